# Medians of ab.py's pairs: summary.py run.jsonl ...
import json,sys,statistics as st
rows=[dict(json.loads(l),file=f) for f in sys.argv[1:] for l in open(f)]
# pairs: consecutive rows with same pair index
P={}
for r in rows: P.setdefault((r.get('file'),r['pair']),[]).append(r)
conds=[]
for r in rows:
    if r['cond'] not in ('U','UA') and r['cond'] not in conds: conds.append(r['cond'])
med=st.median
print(f"{'cond':14s} {'n':>2s} {'base':>7s} {'rps':>7s} {'ratio':>6s} {'pair ratios':30s} {'cores':>6s} {'cpu10k':>7s} {'ngInv b/x':>11s} {'wrkCS b/x':>12s} {'ng+wrk b/x':>11s} {'other':>6s} drops sp/req load")
for c in conds:
    ps=[p for p in P.values() if any(x['cond']==c for x in p)]
    xs=[next(x for x in p if x['cond']==c) for p in ps]; bs=[next(x for x in p if x['cond']!=c) for p in ps]
    rat=[x['rps']/b['rps'] for x,b in zip(xs,bs)]
    print(f"{c:14s} {len(xs):2d} {med([b['rps'] for b in bs]):7.0f} {med([x['rps'] for x in xs]):7.0f} {med(rat):6.3f} {','.join('%.2f'%v for v in rat):30s} {med([x['cores'] for x in xs]):6.3f} {med([x.get('cpu_per_10k') or 0 for x in xs]):7.4f} {med([b['ng_invol'] for b in bs]):5.0f}/{med([x['ng_invol'] for x in xs]):5.0f} {med([b['wrk_cs'] for b in bs]):6.0f}/{med([x['wrk_cs'] for x in xs]):5.0f} {med([b['ng_cores']+b['wrk_cores'] for b in bs]):5.2f}/{med([x['ng_cores']+x['wrk_cores'] for x in xs]):5.2f} {max(max(b['other_cores'],x['other_cores']) for b,x in zip(bs,xs)):6.2f} {sum(x.get('drops') or 0 for x in xs):.0f} {med([x.get('spans_per_req') or 0 for x in xs]):.3f} {min(r['load'] for r in xs+bs)}-{max(r['load'] for r in xs+bs)}")
