// ratings: Node.js http on the event loop, no downstream calls. Logs the
// X-ZT-Marker header of each request with its connection and its position on
// that connection (a ZTGT line): the tests' ground truth. With ZT_TLS_CERT
// and ZT_TLS_KEY set (TLS variants) it serves HTTPS (node's own OpenSSL).
const fs = require('fs');
const http = require('http');
const https = require('https');
const port = Number(process.argv[2] || 9081);
const tls = process.env.ZT_TLS_CERT
  ? { cert: fs.readFileSync(process.env.ZT_TLS_CERT), key: fs.readFileSync(process.env.ZT_TLS_KEY) } : null;
const serve = (handler) => (tls ? https.createServer(tls, handler) : http.createServer(handler));
serve((req, res) => {
  const s = req.socket;
  s.ztRequests = (s.ztRequests || 0) + 1;
  console.log(`ZTGT ${req.headers['x-zt-marker'] || '-'} ${s.remoteAddress} ${s.remotePort} ${s.localAddress} ${s.localPort} ${s.ztRequests}`);
  const body = JSON.stringify({ id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}).listen(port, '127.0.0.1', () => console.log('READY'));
