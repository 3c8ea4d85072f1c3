// Test server: Node.js http on one event loop (stdlib only).
// usage: node loop.js HOST PORT DOWNSTREAM_URL [SPIN_UNTIL_FILE]
// Every request calls DOWNSTREAM_URL + path + "/a" on a new connection
// (agent: false) and + "/b" through a shared keep-alive http.Agent of at
// most 4 sockets (requests queue for a socket another request frees), both
// started in the handler, and answers when both are done. A timer calls
// DOWNSTREAM_URL + "/bg" every 20 ms: those calls belong to no request.
// SPIN_UNTIL_FILE: from its start until that file exists (looked for every
// 10 ms, at most 60 s) the loop never idles (an immediate queues the next),
// so that uprobes attached meanwhile attach in the middle of turns.
const http = require('http');
const [host, port, down] = [process.argv[2], Number(process.argv[3]), new URL(process.argv[4])];
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const spinFile = process.argv[5], spinMax = Date.now() + 60000;
let spinLook = 0;
(function spin() {
  if (!spinFile || Date.now() > spinMax) return;
  if (Date.now() >= spinLook) {
    if (require('fs').existsSync(spinFile)) return;
    spinLook = Date.now() + 10;
  }
  setImmediate(spin);
})();

function call(path, opts, done) {
  const req = http.request({ host: down.hostname, port: down.port, path, ...opts }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => done(res.statusCode, Buffer.concat(chunks)));
  });
  req.on('error', () => done(502, Buffer.alloc(0)));
  req.end();
}

setInterval(() => call('/bg', { agent: false }, () => {}), 20);

http.createServer((req, res) => {
  if (req.url === '/ready') { res.end('ok'); return; }
  let left = 2, status = 200;
  const parts = [];
  const done = (code, body) => {
    if (code !== 200) status = 502;
    parts.push(body);
    if (--left === 0) {
      const body = Buffer.concat(parts);
      res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
      res.end(body);
    }
  };
  call(req.url + '/a', { agent: false }, done);
  call(req.url + '/b', { agent }, done);
}).listen(port, host, () => console.log('READY'));
