/* harness.h: the in-tree unit test harness.  One C program per module;
 * each includes this header once.
 *
 *   TEST(name) { CHECK(...); CHECK_EQ_INT(a, b); ... }
 *   int main(int argc, char **argv) { return harness_run(argc, argv); }
 *
 * TEST registers the function at start-up (a constructor); tests run in
 * source order.  CHECK_* record a failure with file:line and the values and
 * let the test go on; REQUIRE* also return from the test function.  A test
 * fails when any of its checks failed.  harness_run prints "PASS name" or
 * "FAIL name" per test and ends with the line "N passed, N failed"
 * (tests, not checks); it returns 0 only when none failed.  Arguments name
 * the tests to run (all when none are given).
 */
#ifndef IGW_T_UNIT_HARNESS_H
#define IGW_T_UNIT_HARNESS_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct harness_test {
	const char *name;
	void (*fn)(void);
	int line;
	struct harness_test *next;
};

static struct harness_test *harness_list;
static unsigned harness_cur_failures;	/* failed checks in this test */
static const char *harness_cur_name;

/* Keep the list in source order whatever order constructors run in. */
static inline void
harness_register(struct harness_test *t)
{
	struct harness_test **pp = &harness_list;

	while (*pp && (*pp)->line < t->line)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
}

#define TEST(tname_)                                                          \
	static void test_##tname_(void);                                      \
	static struct harness_test harness_t_##tname_ = {                     \
		.name = #tname_, .fn = test_##tname_, .line = __LINE__ };     \
	__attribute__((constructor)) static void harness_reg_##tname_(void)   \
	{                                                                     \
		harness_register(&harness_t_##tname_);                        \
	}                                                                     \
	static void test_##tname_(void)

static inline void __attribute__((format(printf, 3, 4)))
harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	harness_cur_failures++;
	printf("  %s:%d: [%s] ", file, line,
	       harness_cur_name ? harness_cur_name : "?");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline bool
harness_check(bool ok, const char *file, int line, const char *expr)
{
	if (!ok)
		harness_fail(file, line, "CHECK(%s) failed", expr);
	return ok;
}

/* Returns true when the check passed. */
#define CHECK(cond) harness_check(!!(cond), __FILE__, __LINE__, #cond)

#define CHECK_MSG(cond, ...)                                                  \
	do {                                                                  \
		if (!(cond)) {                                                \
			harness_fail(__FILE__, __LINE__, "CHECK(%s) failed",  \
				     #cond);                                  \
			printf("    ");                                       \
			printf(__VA_ARGS__);                                  \
			printf("\n");                                         \
		}                                                             \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                    \
	do {                                                                  \
		long long h_a_ = (long long)(a), h_b_ = (long long)(b);       \
		if (h_a_ != h_b_)                                             \
			harness_fail(__FILE__, __LINE__,                      \
				     "CHECK_EQ_INT(%s, %s) failed: %lld != %lld", \
				     #a, #b, h_a_, h_b_);                     \
	} while (0)

#define CHECK_EQ_UINT(a, b)                                                   \
	do {                                                                  \
		unsigned long long h_a_ = (unsigned long long)(a);            \
		unsigned long long h_b_ = (unsigned long long)(b);            \
		if (h_a_ != h_b_)                                             \
			harness_fail(__FILE__, __LINE__,                      \
				     "CHECK_EQ_UINT(%s, %s) failed: %llu (0x%llx) != %llu (0x%llx)", \
				     #a, #b, h_a_, h_a_, h_b_, h_b_);         \
	} while (0)

#define CHECK_EQ_HEX CHECK_EQ_UINT

#define CHECK_EQ_STR(a, b)                                                    \
	do {                                                                  \
		const char *h_a_ = (a), *h_b_ = (b);                          \
		if (!h_a_ || !h_b_ ? h_a_ != h_b_ : strcmp(h_a_, h_b_) != 0)  \
			harness_fail(__FILE__, __LINE__,                      \
				     "CHECK_EQ_STR(%s, %s) failed: \"%s\" != \"%s\"", \
				     #a, #b, h_a_ ? h_a_ : "(null)",          \
				     h_b_ ? h_b_ : "(null)");                 \
	} while (0)

/* Substring check, for messages. */
#define CHECK_CONTAINS(hay, needle)                                           \
	do {                                                                  \
		const char *h_a_ = (hay), *h_b_ = (needle);                   \
		if (!h_a_ || !strstr(h_a_, h_b_))                             \
			harness_fail(__FILE__, __LINE__,                      \
				     "CHECK_CONTAINS(%s, %s) failed: \"%s\" does not contain \"%s\"", \
				     #hay, #needle, h_a_ ? h_a_ : "(null)",   \
				     h_b_);                                   \
	} while (0)

static inline void
harness_check_mem(const char *file, int line, const char *expr_a,
		  const char *expr_b, const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i]) {
			harness_fail(file, line,
				     "CHECK_MEM(%s, %s, %zu) failed: first difference at byte %zu: 0x%02x != 0x%02x",
				     expr_a, expr_b, n, i, x[i], y[i]);
			return;
		}
	}
}

#define CHECK_MEM(a, b, n)                                                    \
	harness_check_mem(__FILE__, __LINE__, #a, #b, (a), (b), (n))

/* Every one of n bytes at p equals v. */
static inline void
harness_check_fill(const char *file, int line, const char *expr,
		   const void *p, uint8_t v, size_t n)
{
	const uint8_t *x = p;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != v) {
			harness_fail(file, line,
				     "CHECK_FILL(%s, 0x%02x, %zu) failed: byte %zu is 0x%02x",
				     expr, v, n, i, x[i]);
			return;
		}
	}
}

#define CHECK_FILL(p, v, n)                                                   \
	harness_check_fill(__FILE__, __LINE__, #p, (p), (v), (n))

/* As CHECK, but leave the test function when it fails. */
#define REQUIRE(cond)                                                         \
	do {                                                                  \
		if (!CHECK(cond))                                             \
			return;                                               \
	} while (0)

static inline bool
harness_selected(int argc, char **argv, const char *name)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

static inline int
harness_run(int argc, char **argv)
{
	unsigned passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (struct harness_test *t = harness_list; t; t = t->next) {
		if (!harness_selected(argc, argv, t->name))
			continue;
		harness_cur_failures = 0;
		harness_cur_name = t->name;
		t->fn();
		harness_cur_name = NULL;
		if (harness_cur_failures) {
			printf("FAIL %s\n", t->name);
			failed++;
		} else {
			printf("PASS %s\n", t->name);
			passed++;
		}
	}
	printf("%u passed, %u failed\n", passed, failed);
	fflush(stdout);
	return failed ? 1 : 0;
}

#endif
