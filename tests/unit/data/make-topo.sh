#!/usr/bin/env bash
# Regenerate the hwloc XML topologies of tests/unit/test-affinity.c with
# hwloc's own lstopo (Debian's hwloc 2.9) from synthetic descriptions.
# usage: tests/unit/data/make-topo.sh   (from anywhere; writes next to itself)
set -euo pipefail
cd "$(dirname "$0")"
# lstopo notes "Inserting a NUMA level with a single object" on stderr
xml() { lstopo-no-graphics --if synthetic --input "$1" --of xml "$2" 2>/dev/null; }

# One socket, one L3, 8 cores, no SMT: CPUs 0-7.
xml "package:1 numa:1 l3:1 core:8 pu:1" topo-1s8c.xml

# Two sockets (one NUMA node each), two L3 per socket, 4 cores per L3, 2 SMT
# threads per core; Linux numbering: core c has CPUs c and c+16, so the
# siblings are far apart and an OS index is not hwloc's logical index.
ix=$(for c in $(seq 0 15); do printf '%d,%d,' "$c" $((c + 16)); done)
xml "package:2 numa:1 l3:2 core:4 pu:2(indexes=${ix%,})" topo-2s-smt.xml

# Two cores sharing an L3, no SMT: this build machine and the 2-vCPU guests.
xml "package:1 numa:1 l3:1 core:2 pu:1" topo-2c.xml

# 8 cores as topo-1s8c, CPUs 3 and 7 offline and CPU 5 not allowed (as a
# cpuset cgroup would): restricted to 0-2,4-6 (0x77), then the machine's
# complete_cpuset put back to 0-7 (0xff: offline CPUs exist but are not in
# the topology, as Linux reports them) and its allowed_cpuset set to
# 0-4,6 without 3 (0x57).
lstopo-no-graphics --if synthetic --input "package:1 numa:1 l3:1 core:8 pu:1" \
	--restrict 0x77 --of xml - 2>/dev/null |
	sed -e '/type="Machine"/s/complete_cpuset="0x00000077"/complete_cpuset="0x000000ff"/' \
	    -e '/type="Machine"/s/allowed_cpuset="0x00000077"/allowed_cpuset="0x00000057"/' \
	    > topo-offline.xml
grep -q 'complete_cpuset="0x000000ff" allowed_cpuset="0x00000057"' topo-offline.xml

# Malformed: topo-2c.xml cut off in the middle of an element.
head -c 900 topo-2c.xml > topo-malformed.xml
