#!/usr/bin/env python3
# The chunk-size choice of builder/src/store/mount_pack/chunker.rs, simulated: the same cut rule
# (a cut after an entry when the chunk holds `min` bytes and the path hash mod `target` is below
# the entry's tar bytes; `max` forces a cut; files of `target` or more alone) on 1 GB pip-like
# caches (testkit::pip_cache's mix of sizes; blake2b stands in for blake3), 6 seeds, 5 changes
# each: what one added 5 MB wheel, one removed file, one rewritten file and one added 20 kB
# entry make new (chunks, MB). Directories are left out (they travel in chunks of their own).
# Usage: python3 bench/mount-pack-chunking.py   (a minute or two; pure Python)
import hashlib, random, statistics
MB=1<<20
def gen(total, seed):
    r=random.Random(seed); files=[]; b=0
    while b<total:
        roll=r.randrange(1000)
        if roll<10: size=r.randrange(MB, 50*MB); p="wheels/"+r.getrandbits(64).to_bytes(8,'big').hex()
        elif roll<90: size=r.randrange(32<<10, MB); p="http-v2/"+r.getrandbits(64).to_bytes(8,'big').hex()
        else: size=r.randrange(300, 32<<10); p="http-v2/"+r.getrandbits(64).to_bytes(8,'big').hex()
        size=min(size,total-b); files.append([p,size,0]); b+=size
    files.sort(); return files
def ph(p): return int.from_bytes(hashlib.blake2b(p.encode(),digest_size=8).digest(),'little')
def w(f): return 512+ (1024 if len(f[0])>100 else 0) + -(-f[1]//512)*512
def chunks(files, mn, tg, mx):
    out=[]; cur=[]; by=0
    for f in files:
        ww=w(f); alone=f[1]>=tg
        if alone and cur: out.append(tuple(cur)); cur=[]; by=0
        cur.append(tuple(f)); by+=ww
        if alone or by>=mx or (by>=mn and ph(f[0])%tg<ww): out.append(tuple(cur)); cur=[]; by=0
    if cur: out.append(tuple(cur))
    return out
def size(c): return sum(w(f) for f in c)
def delta(a,b):
    sa=set(a); new=[c for c in b if c not in sa]; return len(new), sum(size(c) for c in new)
import sys
total=1<<30
for params in [(2*MB,8*MB,32*MB),(2*MB,8*MB,16*MB),(1*MB,4*MB,16*MB),(4*MB,12*MB,48*MB)]:
    res={'add5':[], 'rm':[], 'mod':[], 'addsmall':[]}
    for seed in range(6):
        files=gen(total, seed); base=chunks(files,*params)
        r=random.Random(seed+100)
        for t in range(5):
            nf=sorted(files+[["wheels/"+r.getrandbits(64).to_bytes(8,'big').hex(),5*MB,0]])
            res['add5'].append(delta(base,chunks(nf,*params)))
            i=r.randrange(len(files)); nf=files[:i]+files[i+1:]
            res['rm'].append(delta(base,chunks(nf,*params)))
            i=r.randrange(len(files)); nf=[list(f) for f in files]; nf[i][2]=1
            res['mod'].append(delta(base,chunks(nf,*params)))
            nf=sorted(files+[["http-v2/"+r.getrandbits(64).to_bytes(8,'big').hex(),20000,0]])
            res['addsmall'].append(delta(base,chunks(nf,*params)))
    print(params[0]//MB,params[1]//MB,params[2]//MB, "chunks", len(base), "files", len(files))
    for k,v in res.items():
        n=[x[0] for x in v]; b=[x[1]/MB for x in v]
        print(f"  {k}: chunks median {statistics.median(n)} max {max(n)}; MB median {statistics.median(b):.1f} p90 {sorted(b)[int(len(b)*.9)]:.1f} max {max(b):.1f}")
