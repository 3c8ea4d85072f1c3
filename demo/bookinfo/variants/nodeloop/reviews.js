// reviews, nodeloop variant: Node.js http on one event loop, calling ratings
// through its sidecar with http.request on a keep-alive http.Agent while it
// serves other requests. No tracing header is forwarded. X-ZT-Marker is the
// tests' ground truth (copied onto the ratings call, logged with the
// request's connection and its position there as a ZTGT line).
const http = require('http');
const port = Number(process.argv[2] || 9081);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function ratings(marker, callback) {
  let called = false;
  const done = (code, body) => { if (!called) { called = true; callback(code, body); } };
  const req = http.request({ host: '127.0.0.1', port: 15001, path: '/ratings/0', agent, timeout: 10000,
    headers: { Host: 'ratings', 'X-ZT-Marker': marker } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => done(res.statusCode, Buffer.concat(chunks).toString()));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => { console.error(`ratings: ${e}`); done(502, 'null'); });
  req.end();
}

http.createServer((req, res) => {
  const s = req.socket;
  s.ztRequests = (s.ztRequests || 0) + 1;
  const marker = req.headers['x-zt-marker'] || '';
  console.log(`ZTGT ${marker || '-'} ${s.remoteAddress} ${s.remotePort} ${s.localAddress} ${s.localPort} ${s.ztRequests}`);
  ratings(marker, (code, rating) => {
    const body = `{"id":0,"reviews":[{"reviewer":"Reviewer1","rating":${rating}}]}`;
    res.writeHead(code === 200 ? 200 : 502, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}).listen(port, '127.0.0.1', () => console.log('READY'));
