#!/bin/sh
# fuzz/build.sh BUILD_DIR: build the libFuzzer targets of fuzz/ into
# BUILD_DIR, from any folder.
#
# BUILD_DIR gets its own out-of-tree build of libgw.a (the product minus
# main.c) made with clang and CFLAGS="-g -O1
# -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
# (so a UBSan report stops the run like an ASan one), then each fuzz/fuzz-*.c
# is linked with -fsanitize=fuzzer,address,undefined against it, jansson,
# libcrypto and the other libraries iscsi-gw links, into BUILD_DIR/fuzz-NAME.  Run again, it reconfigures only when
# configure or the flags changed, lets make rebuild what changed, and relinks
# a target only when its source, fuzz.h or libgw.a is newer.
#
# Environment: CC (default clang), JOBS (make -j, default nproc).
# Exit status: 0 built, 1 failed, 77 clang or libFuzzer unavailable.

set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(dirname "$here")
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
mkdir -p "$1"
build=$(cd "$1" && pwd)

CC=${CC:-clang}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
LIB_CFLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
FUZZ_CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

# Can this compiler build and link a libFuzzer target at all?
probe=$build/.probe
if ! command -v "$CC" >/dev/null 2>&1 ||
   ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ return 0; }\n' |
	"$CC" -x c -fsanitize=fuzzer $SAN -o "$probe" - >/dev/null 2>&1; then
	echo "$0: $CC cannot build libFuzzer targets (apt-get install clang libclang-rt-14-dev)" >&2
	rm -f "$probe"
	exit 77
fi
rm -f "$probe"

# Configure once; again when configure or the flags change.
stamp=$build/.fuzz-configured
want="$CC $LIB_CFLAGS $srcdir"
if [ ! -f "$build/Makefile" ] || [ ! -f "$stamp" ] ||
   [ "$(cat "$stamp")" != "$want" ] || [ "$srcdir/configure" -nt "$stamp" ]; then
	echo "fuzz/build.sh: configuring $build"
	if ! (cd "$build" && "$srcdir/configure" CC="$CC" CFLAGS="$LIB_CFLAGS" \
		>configure.log 2>&1); then
		tail -n 30 "$build/configure.log" >&2
		echo "$0: configure failed (log: $build/configure.log)" >&2
		exit 1
	fi
	echo "$want" >"$stamp"
fi

echo "fuzz/build.sh: make libgw.a in $build"
if ! make -C "$build" -j"$JOBS" libgw.a >"$build/make.log" 2>&1; then
	tail -n 40 "$build/make.log" >&2
	echo "$0: make libgw.a failed (log: $build/make.log)" >&2
	exit 1
fi

# The libraries iscsi-gw itself links (jansson, libcrypto and whatever the
# configured backends need, libnbd or libaio), as the build's Makefile says,
# with any other archive of the build made absolute; pkg-config for the two
# that are always there if that fails.
LIBS=
for w in $(printf 'fuzz-print-libs:\n\t@echo $(iscsi_gw_LDADD) $(LIBS)\n' |
	make -s --no-print-directory -C "$build" -f Makefile -f - fuzz-print-libs \
	2>/dev/null); do
	case $w in
	libgw.a) ;;
	-*|/*) LIBS="$LIBS $w" ;;
	*) LIBS="$LIBS $build/$w" ;;
	esac
done
[ -n "$LIBS" ] || LIBS=$(pkg-config --libs jansson libcrypto)
for src in "$here"/fuzz-*.c; do
	name=$(basename "$src" .c)
	out=$build/$name
	if [ -x "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$here/fuzz.h" ] &&
	   [ "$out" -nt "$build/libgw.a" ]; then
		continue
	fi
	echo "fuzz/build.sh: linking $name"
	# shellcheck disable=SC2086  # flag lists split on purpose
	"$CC" $FUZZ_CFLAGS -Wall -Wextra -Wno-unused-parameter \
		-I"$build" -I"$srcdir/gateway" -I"$srcdir/plugins" -I"$srcdir" \
		-o "$out.tmp" "$src" "$build/libgw.a" $LIBS -pthread
	mv "$out.tmp" "$out"
done
echo "fuzz/build.sh: targets in $build:" $(cd "$build" && ls fuzz-* | grep -v '\.')
