#!/bin/bash
# fuzz.sh: the suite's bounded libFuzzer run (fuzz/).
#
# Checks: each target of fuzz/ (fuzz-pdu: a connection's receive path;
# fuzz-keys: login keys and CHAP values; fuzz-cdb: CDB dispatch over the
# memory backend; fuzz-conf: the map reader) first replays every input in
# fuzz/regressions/<target>/ (each must run clean), then fuzzes for
# FUZZ_SECONDS on a copy of fuzz/corpus/<target>/ plus those inputs, under
# ASan and UBSan, and must end without a crash, leak, timeout (10 s an
# input) or going over 2048 MB.  Per target it prints the executions and
# the coverage (cov: edges, ft: features) of libFuzzer's final stats line.
#
# Does not check: anything a short run does not reach (this is a smoke
# run; fuzz for hours by hand with the same binaries), and it does not
# keep the corpus it grew.  A crash input is kept in
# $BUILDDIR/fuzz-crashes/<target>/; add it, minimised, to
# fuzz/regressions/<target>/ with the fix.
#
# Environment: BUILDDIR (the targets go to $BUILDDIR/fuzz-build, reused
# when up to date), SRCDIR, FUZZ_SECONDS (default 45 per target),
# FUZZ_TARGETS (default: every fuzz/fuzz-*.c).  Exit 0 pass, 1 fail,
# 77 skip (no clang with libFuzzer).

source "$(dirname "$0")/functions.sh"

FUZZ_SECONDS=${FUZZ_SECONDS:-45}
FUZZ_BUILD=$BUILDDIR/fuzz-build
CRASHES=$BUILDDIR/fuzz-crashes

requires clang --version
"$SRCDIR/fuzz/build.sh" "$FUZZ_BUILD"
rc=$?
if [ $rc -eq 77 ]; then
	echo "$0: SKIP: clang cannot build libFuzzer targets"
	exit 77
fi
[ $rc -eq 0 ] || fail "fuzz/build.sh failed ($rc)"

if [ -z "${FUZZ_TARGETS:-}" ]; then
	FUZZ_TARGETS=$(cd "$SRCDIR/fuzz" && ls fuzz-*.c | sed 's/\.c$//')
fi

# Stop on the first UBSan report, with a stack; leaks count as crashes.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

failed=0
summary=()

# The lines of a report worth seeing in the suite's log.
report_head() {
	grep -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz invariant failed|SUMMARY:|^    #[0-9] |Test unit written|deadly signal|timeout after|out-of-memory" "$1" |
		head -n 25
}

for t in $FUZZ_TARGETS; do
	bin=$FUZZ_BUILD/$t
	[ -x "$bin" ] || fail "$t: no binary at $bin"

	# 1. Regression inputs, one by one.
	nreg=0
	passed_reg=()
	if [ -d "$SRCDIR/fuzz/regressions/$t" ]; then
		for f in "$SRCDIR/fuzz/regressions/$t"/*; do
			[ -f "$f" ] || continue
			nreg=$((nreg + 1))
			log=$TMP/$t.regression.log
			timeout 120 "$bin" -rss_limit_mb=2048 -timeout=10 "$f" \
				</dev/null >"$log" 2>&1
			rc=$?
			if [ $rc -ne 0 ]; then
				note "$t: regression $(basename "$f"): FAIL (exit $rc)"
				report_head "$log"
				failed=1
			else
				note "$t: regression $(basename "$f"): ok"
				passed_reg+=("$f")
			fi
		done
	fi

	# 2. A bounded fuzz run on a copy of the seeds and the regression
	# inputs that passed (one that failed would only stop it at once).
	corpus=$TMP/corpus-$t
	mkdir -p "$corpus" "$TMP/artifacts"
	cp "$SRCDIR/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
	[ ${#passed_reg[@]} -gt 0 ] && cp "${passed_reg[@]}" "$corpus"/
	log=$TMP/$t.log
	timeout $((FUZZ_SECONDS + 300)) "$bin" -max_total_time="$FUZZ_SECONDS" \
		-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$TMP/artifacts/$t-" "$corpus" \
		</dev/null >"$log" 2>&1
	rc=$?

	# libFuzzer's final stats line ("#N DONE cov: ... ft: ..."), or the
	# last progress line when the run stopped on a crash.
	last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(printf '%s\n' "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
	cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p')
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	note "$t: libFuzzer: $last"
	line="$t: execs ${execs:-?} (${rate:-?}/s), cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?}"
	if [ $rc -ne 0 ]; then
		note "$t: FAIL: fuzzing stopped with exit $rc"
		report_head "$log"
		mkdir -p "$CRASHES/$t"
		for a in "$TMP/artifacts/$t-"*; do
			[ -f "$a" ] || continue
			cp "$a" "$CRASHES/$t/"
			note "$t: crash input kept as $CRASHES/$t/$(basename "$a")"
		done
		cp "$log" "$CRASHES/$t/fuzz.log"
		failed=1
		line="$line: CRASH (exit $rc)"
	else
		line="$line: no crash"
	fi
	note "$line"
	summary+=("$line")
done

note "summary (${FUZZ_SECONDS} s a target):"
for l in "${summary[@]}"; do
	note "  $l"
done
[ $failed -eq 0 ] || fail "a fuzz target crashed or a regression input failed"
exit 0
