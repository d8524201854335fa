#!/bin/bash
# quickstart.sh: the README's two commands, on a fresh Debian 12 machine
# as root (or with sudo):
#   ./quickstart.sh serve   install, build, serve the built-in map
#   ./quickstart.sh test    install, build, run the whole test suite
# The test run ends with "N passed, N failed, N skipped".
set -eu
cd "$(dirname "$0")"
top=$PWD

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

BUILD_DEPS="build-essential autoconf automake libtool pkg-config
	libjansson-dev libaio-dev libssl-dev libnbd-dev libfuse3-dev fuse3 perl"
TEST_DEPS="libiscsi-bin libiscsi-dev qemu-utils qemu-block-extra python3 nbdkit
	clang libclang-rt-14-dev iproute2
	valgrind procps"

install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "quickstart: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build DIR [CONFIGURE-ARGS...]: an out-of-tree build.
build() {
	local dir=$1; shift
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null 2>&1)
	mkdir -p "$dir"
	(cd "$dir" && { [ -f Makefile ] || "$top/configure" --enable-gcc-warnings "$@" >configure.out; } &&
	 make -j"$(nproc)" >make.out 2>&1 && make -j"$(nproc)" check-programs >>make.out 2>&1) ||
		{ tail -40 "$dir/make.out" 2>/dev/null; echo "quickstart: build failed in $dir"; exit 1; }
}

case "${1:-}" in
serve)
	install $BUILD_DEPS
	build "$top/_build"
	shift
	exec "$top/_build/iscsi-gw" serve "$@"
	;;
test)
	install $BUILD_DEPS $TEST_DEPS
	build "$top/_build"
	build "$top/_build-asan" --enable-sanitizers
	exec "$top/t/suite.sh" "$top/_build" "$top/_build-asan"
	;;
*)
	echo "usage: $0 serve [--port PORT] | test" >&2
	exit 2
	;;
esac
