#!/usr/bin/python3
"""check-layout.py DIR: the files of src/ call each other without cycles.

Reads the symbols each object file of DIR/src defines and uses (nm) and
fails, naming the files, if some files depend on each other in a cycle:
each file should build on files below it, as README's layout says.
"""
import collections
import glob
import subprocess
import sys

top = sys.argv[1] if len(sys.argv) > 1 else '.'
defined, used = {}, collections.defaultdict(set)
for obj in sorted(glob.glob(top + '/src/*.o')):
    name = obj.rsplit('/', 1)[1][:-2]
    for line in subprocess.run(['nm', obj], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in 'TDBR':
            defined[parts[2]] = name
        elif len(parts) == 2 and parts[0] == 'U':
            used[name].add(parts[1])
if not defined:
    sys.exit('check-layout: no object files in %s/src (build first)' % top)
graph = {f: {defined[s] for s in syms if s in defined and defined[s] != f}
         for f, syms in used.items()}

# Tarjan's strongly connected components, iteratively
index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]
for root in graph:
    if root in index:
        continue
    work = [(root, iter(sorted(graph.get(root, ()))))]
    index[root] = low[root] = counter[0]; counter[0] += 1
    stack.append(root); on.add(root)
    while work:
        node, it = work[-1]
        nxt = next(it, None)
        if nxt is not None:
            if nxt not in index:
                index[nxt] = low[nxt] = counter[0]; counter[0] += 1
                stack.append(nxt); on.add(nxt)
                work.append((nxt, iter(sorted(graph.get(nxt, ())))))
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[node])
        if low[node] == index[node]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == node:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))
for c in cycles:
    print('files that depend on each other: ' + ', '.join(c))
sys.exit(1 if cycles else 0)
