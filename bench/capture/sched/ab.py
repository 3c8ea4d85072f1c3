#!/usr/bin/python3
# nginx + wrk against a co-runner, in back-to-back pairs (docs/capture.md, "Issue 29,
# seventeenth round"). Root (the collector loads BPF). The bench's nginx config, one worker,
# wrk -t1 -c16; each condition is measured right after or before an untraced run (order
# alternating), one JSON line per run; summary.py prints medians of the pairs' ratios.
#   BINS=main=/tmp/zt ROUNDS=3 DUR=3 CONDS=C,C+batch,C+nice10,C+gmp1,C+poll50ms,C+A,B4500/10000 ab.py > run.jsonl
# Conditions: U untraced; UA untraced with nginx and wrk on CPU 0; C[bin][+mod...] the collector
# (`zerotrace collect`) with mods batch (chrt -b 0), niceN, idle (chrt -i 0), gmpN (GOMAXPROCS),
# pollD (ZEROTRACE_RING_POLL=D), A (collector on CPU 1, nginx and wrk on CPU 0);
# B<busy_us>/<period_us> a duty-cycled busy loop (burn.c, built to $BURN).
# Per run: requests/s, the co-runner's cores (/proc/pid/stat), nginx's and wrk's cores and
# context switches (/proc/pid/task/*/sched, perf stat), the host's busy cores (/proc/stat) and
# what no process of the run used ("other_cores": another user of the machine), and for the
# collector its spans, CPU per 10k spans/s and ring-buffer drops (its /metrics).
import os, sys, time, subprocess, socket, re, json, shutil, tempfile, urllib.request, signal
HZ = os.sysconf('SC_CLK_TCK')
DUR = int(os.environ.get('DUR', '3'))
ROUNDS = int(os.environ.get('ROUNDS', '3'))
CONDS = os.environ.get('CONDS', 'C,C+poll50ms').split(',')
BIN = {'main': os.environ.get('ZEROTRACE', 'zerotrace')}
BURN = os.environ.get('BURN', './burn')
for kv in os.environ.get('BINS', '').split(','):
    if '=' in kv:
        k, v = kv.split('='); BIN[k] = v

def freeport():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p

tmp = tempfile.mkdtemp(prefix='zt-sched-ab-')
pre = tmp + '/nginx'; os.makedirs(pre)
port = freeport()
open(pre + '/nginx.conf', 'w').write(f'''daemon off;
master_process off;
worker_processes 1;
pid {pre}/nginx.pid;
error_log {pre}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {pre}/body; proxy_temp_path {pre}/proxy; fastcgi_temp_path {pre}/fastcgi;
    uwsgi_temp_path {pre}/uwsgi; scgi_temp_path {pre}/scgi;
    keepalive_requests 10000000;
    server {{ listen 127.0.0.1:{port}; default_type text/plain; location / {{ return 200 "ok"; }} }}
}}
''')
ng = subprocess.Popen(['nginx', '-p', pre, '-c', pre + '/nginx.conf'])
for _ in range(100):
    try: socket.create_connection(('127.0.0.1', port), 1).close(); break
    except OSError: time.sleep(0.05)

def cpu_of(pid):
    s = open(f'/proc/{pid}/stat').read(); f = s[s.rindex(')') + 2:].split()
    return (int(f[11]) + int(f[12])) / HZ

def sched_of(pid):
    d = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            for l in open(f'/proc/{pid}/task/{tid}/sched'):
                m = re.match(r'(nr_voluntary_switches|nr_involuntary_switches|se.nr_migrations)\s*:\s*(\d+)', l)
                if m: d[m.group(1)] = d.get(m.group(1), 0) + int(m.group(2))
        except OSError: pass
    return d

def host_busy():
    f = open('/proc/stat').readline().split()[1:]
    v = list(map(int, f)); idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / HZ

def metrics(addr):
    m = {}
    for l in urllib.request.urlopen(f'http://{addr}/metrics', timeout=2).read().decode().splitlines():
        if l.startswith('#') or not l.strip(): continue
        k, _, v = l.rpartition(' ')
        try: m[k] = float(v)
        except ValueError: pass
    return m

def wrk(apart=False):
    out = subprocess.run((['taskset', '-c', '0'] if apart else []) + ['perf', 'stat', '-x,', '-e', 'context-switches,cpu-migrations,task-clock', '--',
                          'wrk', '-t', '1', '-c', '16', '-d', f'{DUR}s', '--timeout', '5s', f'http://127.0.0.1:{port}/'],
                         capture_output=True, text=True)
    rps = float(re.search(r'Requests/sec:\s*([\d.]+)', out.stdout).group(1))
    ps = {}
    for l in out.stderr.splitlines():
        f = l.split(',')
        if len(f) > 3 and f[0].replace('.', '').isdigit(): ps[f[2]] = float(f[0])
    return rps, ps

def start_cond(cond):
    """returns (proc, pid_for_cpu, metrics_addr or None)"""
    if cond in ('U', 'UA'): return None, None, None
    if cond.startswith('BB'):  # two burners
        busy, period = cond[2:].split('/')
        p = subprocess.Popen(['sh', '-c', f'{BURN} {busy} {period} & {BURN} {busy} {period}; wait'])
        time.sleep(0.5); return p, p.pid, None
    if cond.startswith('B'):  # B<busy_us>/<period_us>
        busy, period = cond[1:].split('/')
        p = subprocess.Popen([BURN, busy, period]); time.sleep(0.5); return p, p.pid, None
    # collector variants: C[<bin>][+mod...]
    name, *mods = cond.split('+')
    b = BIN[name[1:] or 'main']
    env = dict(os.environ)
    pre = []
    for mod in mods:
        if mod == 'batch': pre += ['chrt', '-b', '0']
        elif mod.startswith('nice'): pre += ['nice', '-n', mod[4:]]
        elif mod.startswith('gmp'): env['GOMAXPROCS'] = mod[3:]
        elif mod.startswith('idle'): pre += ['chrt', '-i', '0']
        elif mod.startswith('poll'): env['ZEROTRACE_RING_POLL'] = mod[4:]
        elif mod == 'A': pre += ['taskset', '-c', '1']
        else: raise SystemExit('mod ' + mod)
    d = tempfile.mkdtemp(prefix='zs-c-', dir=tmp); os.makedirs(d + '/data')
    ma = f'127.0.0.1:{freeport()}'
    log = open(d + '/collect.log', 'w')
    p = subprocess.Popen(pre + [b, 'collect', '--data-dir', d + '/data', '--metrics-addr', ma], cwd=d, env=env, stdout=log, stderr=log)
    time.sleep(2)
    for _ in range(600):
        try: metrics(ma); break
        except Exception: time.sleep(0.1)
    time.sleep(1)
    return p, p.pid, ma

res = []
pairs = []
for r in range(ROUNDS):
    for c in (CONDS if r % 2 == 0 else list(reversed(CONDS))):
        b = 'UA' if c.endswith('+A') else 'U'
        pairs += [(r, b), (r, c)] if (r + CONDS.index(c)) % 2 == 0 else [(r, c), (r, b)]
for r, cond in pairs:
    if True:
        apart = cond == 'UA' or cond.endswith('+A')
        subprocess.run(['taskset', '-a', '-p', '-c', '0' if apart else '0,1', str(ng.pid)], stdout=subprocess.DEVNULL)
        p, pid, ma = start_cond(cond)
        la = os.getloadavg()[0]
        m0 = metrics(ma) if ma else {}
        c0 = cpu_of(pid) if pid else 0
        n0 = sched_of(ng.pid); g0 = cpu_of(ng.pid); h0 = host_busy()
        t0 = time.time()
        rps, ps = wrk(apart)
        t1 = time.time()
        n1 = sched_of(ng.pid); g1 = cpu_of(ng.pid); h1 = host_busy()
        c1 = cpu_of(pid) if pid else 0
        row = dict(round=r, cond=cond, load=round(la, 2), rps=round(rps), wall=round(t1 - t0, 2),
                   cores=round((c1 - c0) / (t1 - t0), 3),
                   ng_invol=n1.get('nr_involuntary_switches', 0) - n0.get('nr_involuntary_switches', 0),
                   ng_vol=n1.get('nr_voluntary_switches', 0) - n0.get('nr_voluntary_switches', 0),
                   ng_mig=n1.get('se.nr_migrations', 0) - n0.get('se.nr_migrations', 0),
                   wrk_cs=ps.get('context-switches'), wrk_mig=ps.get('cpu-migrations'),
                   ng_cores=round((g1 - g0) / (t1 - t0), 3), wrk_cores=round(ps.get('task-clock', 0) / 1000 / DUR, 3),
                   host_cores=round((h1 - h0) / (t1 - t0), 3))
        row['other_cores'] = round(row['host_cores'] - row['ng_cores'] - row['wrk_cores'] - row['cores'], 3)
        if ma:
            time.sleep(0.3)
            m1 = metrics(ma)
            sp = m1.get('zerotrace_spans_total', 0) - m0.get('zerotrace_spans_total', 0)
            row['spans'] = int(sp)
            row['spans_per_req'] = round(sp / (rps * (t1 - t0)), 3) if rps else None
            row['cpu_per_10k'] = round(row['cores'] / (sp / (t1 - t0) / 1e4), 4) if sp else None
            row['drops'] = m1.get('zerotrace_ebpf_drop_ringbuf_total')
            row['col_threads'] = len(os.listdir(f'/proc/{pid}/task'))
            cs = sched_of(pid)
            row['col_invol_total'] = cs.get('nr_involuntary_switches'); row['col_vol_total'] = cs.get('nr_voluntary_switches')
        if p:
            if cond.startswith('BB'): subprocess.run(['pkill', '-P', str(p.pid)])
            p.send_signal(signal.SIGTERM)
            try: p.wait(20)
            except subprocess.TimeoutExpired: p.kill(); p.wait()
        row['pair'] = len(res) // 2; print(json.dumps(row), flush=True)
        res.append(row)
ng.kill(); ng.wait()
shutil.rmtree(tmp, ignore_errors=True)
