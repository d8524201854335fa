#!/bin/bash
# t/suite.sh BUILD [ASAN_BUILD]: the whole test suite.  Every test of the
# normal build, then the integration tests again against the ASan/UBSan
# daemon (unit tests too, built with sanitizers), then one valgrind run of
# the unit tests.  Ends with one line counting every test it ran:
#   N passed, N failed, N skipped
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: suite.sh BUILD [ASAN_BUILD]}
asan=${2:-}
total_p=0 total_f=0 total_s=0

tally() {	# reads run-tests output on stdin, echoes it, adds its counts
	local line
	while IFS= read -r line; do
		echo "$line"
		if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
			echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}" > "$tmp/last"
		fi
	done
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
add_last() {
	read -r p f s < "$tmp/last" || { p=0; f=1; s=0; }
	total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
	echo 0 1 0 > "$tmp/last"
}

start=$(date +%s)
echo "== tests: $build"
echo 0 1 0 > "$tmp/last"
BUILDDIR=$build "$top/t/run-tests.sh" | tally; add_last
if [ -n "$asan" ]; then
	echo "== tests under ASan/UBSan: $asan"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
	export UBSAN_OPTIONS=print_stacktrace=1
	BUILDDIR=$asan LABEL=asan/ LOGDIR=$asan/test-logs \
		"$top/t/run-tests.sh" $(cd "$top/t" && ls *.sh | grep -v -e '^functions.sh$' \
			-e '^run-tests.sh$' -e '^suite.sh$' -e '^cu-all.sh$' -e '^valgrind.sh$' \
			-e '^fuzz.sh$') | tally
	add_last
	BUILDDIR=$asan LABEL=asan/ LOGDIR=$asan/test-logs \
		"$top/t/run-tests.sh" --unit-only | tally; add_last
fi
echo "== suite took $(( $(date +%s) - start )) s"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ $total_f -eq 0 ]
