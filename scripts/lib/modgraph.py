#!/usr/bin/env python3
# Usage: python3 scripts/lib/modgraph.py mirror/src   (prints each file's crate-internal imports and any cycle)
"""File-level `use crate::` graph of a crate's src/ and its cycles (Tarjan SCC).
Names re-exported by lib.rs (`pub use m::{A, B}`) count as edges to m; `super::x` edges resolve
relative to the file's parent module; a `#[cfg(test)] mod tests` tail is ignored."""
import re,os,sys,collections
root=sys.argv[1] if len(sys.argv)>1 else 'mirror/src'
files={}
for dp,_,fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p=os.path.join(dp,f); rel=os.path.relpath(p,root)[:-3].split('/')
            if rel[-1]=='mod': rel=rel[:-1]
            if rel!=['lib']: files['::'.join(rel)]=p
lib=open(os.path.join(root,'lib.rs')).read()
reexp={}
for m in re.finditer(r'pub use ([a-z_]+)::\{?([^;}]*)\}?;',lib):
    for n in m.group(2).split(','):
        n=n.strip()
        if n: reexp[n]=m.group(1)
def resolve(path):
    # longest module prefix that is a file
    parts=path
    for i in range(len(parts),0,-1):
        k='::'.join(parts[:i])
        if k in files: return k
    if parts and parts[0] in reexp: return reexp[parts[0]]
    return None
def split_top(body):
    out=[];depth=0;cur=''
    for ch in body:
        if ch=='{': depth+=1
        elif ch=='}': depth-=1
        if ch==',' and depth==0: out.append(cur.strip()); cur=''
        else: cur+=ch
    if cur.strip(): out.append(cur.strip())
    return out
def expand(prefix,item):
    m=re.match(r'([A-Za-z_0-9:]*?)::\{(.*)\}$',item,re.S)
    if m:
        pre=prefix+[x for x in m.group(1).split('::') if x]
        r=[]
        for it in split_top(m.group(2)): r+=expand(pre,it)
        return r
    return [prefix+[x for x in item.split(' ')[0].split('::') if x]]
edges=collections.defaultdict(set)
for m,p in files.items():
    src=open(p).read()
    i=src.find('#[cfg(test)]\nmod tests')
    if i>=0: src=src[:i]
    src=re.sub(r'//[^\n]*','',src)
    me=m.split('::')
    paths=[]
    for mm in re.finditer(r'\buse\s+(crate|super)::(\{.*?\}|[A-Za-z_0-9:]+(?:::\{.*?\})?)\s*;',src,re.S):
        base=[] if mm.group(1)=='crate' else me[:-1]
        body=mm.group(2)
        if body.startswith('{'):
            for it in split_top(body[1:-1]): paths+=expand(base,it)
        else: paths+=expand(base,body)
    for mm in re.finditer(r'\bcrate::([a-z_]+(?:::[a-z_]+)*)',src):
        paths.append(mm.group(1).split('::'))
    for mm in re.finditer(r'\bsuper::([a-z_]+(?:::[a-z_]+)*)',src):
        paths.append(me[:-1]+mm.group(1).split('::'))
    for mm in re.finditer(r'^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_]+)\s*;',src,re.M):
        child=mm.group(1)
        if re.search(r'\b'+child+r'::',src): paths.append(me+[child])
    for pth in paths:
        t=resolve(pth)
        if t and t!=m: edges[m].add(t)
for a in sorted(files):
    print(f"{a:28} -> {' '.join(sorted(edges[a]))}")
idx={};low={};st=[];on=set();res=[];c=[0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in sorted(edges.get(v,())):
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(sorted(comp))
for v in sorted(files):
    if v not in idx: sc(v)
print('cycles:',res if res else 'none')
