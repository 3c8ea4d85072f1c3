//go:build linux

package main

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Runtime workloads of bench capture: the uprobes on asyncio's tasks
// (bpf/socket/asyncio.h) and Node.js's callback scopes (nodeasync.h) run
// only in such programs, so a traced round runs one of each with the
// programs' run-time statistics on, and their ns per call is printed
// (bpf_ns_per_call_runtime_*). Each serves and calls itself over loopback
// for benchRuntimeFor; the collector attaches their uprobes after their
// first event, so the first second is not measured.
const benchRuntimeFor = 3 * time.Second

const benchAsyncio = `
import asyncio, sys, time
async def handle(r, w):
    while True:
        try:
            await r.readuntil(b"\r\n\r\n")
        except Exception:
            return
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await w.drain()
async def call(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /x HTTP/1.1\r\nHost: b\r\n\r\n")
    await w.drain()
    await r.readuntil(b"ok")
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        await asyncio.gather(call(port), call(port))
asyncio.run(main())
`

const benchNode = `
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const end = Date.now() + Number(process.argv[1]) * 1000;
let running = 4;
const srv = http.createServer((req, res) => res.end('ok')).listen(0, '127.0.0.1', () => {
  const port = srv.address().port;
  const next = () => {
    if (Date.now() > end) {
      if (--running === 0) { agent.destroy(); srv.close(); }
      return;
    }
    http.get({ host: '127.0.0.1', port, path: '/x', agent }, (res) => { res.resume(); res.on('end', next); })
      .on('error', next);
  };
  for (let i = 0; i < 4; i++) next();
});
`

// runtimeWorkloads runs the asyncio and Node.js workloads one after the
// other; a runtime missing here is skipped (its figures are then absent).
func runtimeWorkloads() error {
	secs := fmt.Sprint(benchRuntimeFor.Seconds())
	for _, w := range [][]string{{"python3", "-c", benchAsyncio, secs}, {"node", "-e", benchNode, secs}} {
		if _, err := exec.LookPath(w[0]); err != nil {
			continue
		}
		if out, err := exec.Command(w[0], w[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s workload: %v: %s", w[0], err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// runtimeProgram reports whether a BPF program is one of the runtime
// uprobes the workloads exercise.
func runtimeProgram(name string) bool {
	return strings.HasPrefix(name, "py_task") || strings.HasPrefix(name, "node_")
}
