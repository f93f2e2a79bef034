#!/usr/bin/env python3
"""Where a running process's resident memory is: per kind of mapping, and the executable's
resident pages per ELF section (issue 13 item 1, idle RSS; bench/sessions.sh runs it).

    python3 bench/rss_breakdown.py PID

1. /proc/PID/smaps, Rss and Anonymous summed per kind: the executable's mappings by
   permission (r-xp = .text; r--p = .rodata, .eh_frame, .rela.dyn and, after RELRO,
   .data.rel.ro; rw-p = .data, .bss), [heap], [stack], each shared library, thread stacks
   (anonymous mappings holding a thread's stack pointer, from /proc/PID/task/*/syscall) and
   the other anonymous mappings (mimalloc's segments and arenas).
2. The executable's pages from /proc/PID/pagemap (present bit; "file page" bit clear =
   a private copy, e.g. .data.rel.ro after the dynamic loader's relocations) assigned to the
   ELF section (`readelf -SW`) that holds them.

Why the .text figure is far above the code that actually runs: a page fault on a file
mapping maps the neighbouring pages already in the page cache too (the kernel's
"fault-around", 64 KiB windows), so one executed function maps a whole 64 KiB window.

Needs read access to the process's /proc files (same user, or root for pagemap and the
stack pointers) and readelf (binutils).
"""

import bisect
import os
import re
import struct
import subprocess
import sys
from collections import defaultdict

PAGE = os.sysconf("SC_PAGE_SIZE")
FAULT_AROUND = 64 * 1024


def stack_pointers(pid):
    """Each thread's stack pointer (second-to-last field of /proc/PID/task/TID/syscall)."""
    sps = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = open(f"/proc/{pid}/task/{tid}/syscall").read().split()
        except OSError:
            continue
        if len(fields) >= 3:
            sps.append(int(fields[-2], 16))
    return sps


def mappings(pid):
    """Every mapping of /proc/PID/smaps: start, end, perms, offset, path and its kB fields."""
    vmas = []
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \d+\s*(.*)$")
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            m = head.match(line)
            if m:
                vmas.append({"start": int(m[1], 16), "end": int(m[2], 16), "perms": m[3],
                             "off": int(m[4], 16), "path": m[5].strip(), "kb": {}})
                continue
            key, _, value = line.partition(":")
            value = value.split()
            if vmas and value and value[0].isdigit():
                vmas[-1]["kb"][key] = int(value[0])
    return vmas


def kind(vma, exe, sps):
    path = vma["path"]
    if path == exe:
        return f"executable {vma['perms']}"
    if path.startswith("["):
        return path
    if path:
        return f"library {os.path.basename(path)}"
    if any(vma["start"] <= sp < vma["end"] for sp in sps):
        return "thread stacks (anonymous)"
    return "other anonymous (mimalloc segments/arenas)"


def sections(exe):
    """Allocated ELF sections as (address, size, name), by address."""
    out = subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout
    row = re.compile(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*)")
    found = []
    for line in out.splitlines():
        m = row.match(line)
        if m and "A" in m[4] and int(m[3], 16) > 0:
            found.append((int(m[2], 16), int(m[3], 16), m[1]))
    return sorted(found)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    exe = os.readlink(f"/proc/{pid}/exe")
    sps = stack_pointers(pid)
    vmas = mappings(pid)

    totals = defaultdict(lambda: [0, 0, 0])  # Rss kB, Anonymous kB, mappings
    for vma in vmas:
        t = totals[kind(vma, exe, sps)]
        t[0] += vma["kb"].get("Rss", 0)
        t[1] += vma["kb"].get("Anonymous", 0)
        t[2] += 1
    print(f"  {'mapping':44} {'Rss kB':>8} {'anon kB':>8} {'maps':>5}")
    for name, t in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        if t[0]:
            print(f"  {name:44} {t[0]:8} {t[1]:8} {t[2]:5}")
    print(f"  {'total':44} {sum(t[0] for t in totals.values()):8} {sum(t[1] for t in totals.values()):8}")

    own = [v for v in vmas if v["path"] == exe]
    base = min(v["start"] - v["off"] for v in own)  # load bias (PIE); the first segment maps offset 0
    secs = sections(exe)
    starts = [s[0] for s in secs]
    per = defaultdict(lambda: [0, 0, 0])  # pages, resident, private copies
    windows = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for vma in own:
            count = (vma["end"] - vma["start"]) // PAGE
            pagemap.seek(vma["start"] // PAGE * 8)
            entries = pagemap.read(count * 8)
            for i in range(count):
                entry = struct.unpack_from("<Q", entries, i * 8)[0]
                addr = vma["start"] + i * PAGE - base
                # The section holding the page's first byte, else the one starting inside it.
                j = bisect.bisect_right(starts, addr) - 1
                if j < 0 or addr >= secs[j][0] + secs[j][1]:
                    j = bisect.bisect_left(starts, addr)
                    name = secs[j][2] if j < len(secs) and secs[j][0] < addr + PAGE else "(between sections)"
                else:
                    name = secs[j][2]
                p = per[name]
                p[0] += 1
                if entry >> 63 & 1:
                    p[1] += 1
                    if name == ".text":
                        windows.add(addr // FAULT_AROUND)
                    if not entry >> 61 & 1:
                        p[2] += 1
    kb = PAGE // 1024
    print(f"  executable {exe}: resident pages per ELF section")
    print(f"  {'section':28} {'size kB':>9} {'Rss kB':>8} {'private kB':>10}")
    for name, p in sorted(per.items(), key=lambda kv: (-kv[1][1], -kv[1][0])):
        print(f"  {name:28} {p[0] * kb:9} {p[1] * kb:8} {p[2] * kb:10}")
    print(f"  .text: resident in {len(windows)} of its 64 KiB windows")
    names = sorted(open(f"/proc/{pid}/task/{t}/comm").read().strip() for t in os.listdir(f"/proc/{pid}/task"))
    print(f"  threads ({len(names)}): {', '.join(names)}")


if __name__ == "__main__":
    main()
