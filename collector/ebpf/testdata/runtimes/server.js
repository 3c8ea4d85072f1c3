// Test server: Node.js http (stdlib only).
// usage: node server.js HOST PORT [DOWNSTREAM_URL]  (see server.py for paths)
const http = require('http');
const [host, port, down] = [process.argv[2], +process.argv[3], process.argv[4] || ''];
const agent = new http.Agent({ keepAlive: false });
http.createServer((req, res) => {
  if (down) {
    http.get(down + req.url, { agent }, (r) => {
      const parts = [];
      r.on('data', (d) => parts.push(d));
      r.on('end', () => {
        const body = Buffer.concat(parts);
        res.writeHead(r.statusCode, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
        res.end(body);
      });
    }).on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    return;
  }
  if (req.url.startsWith('/chunked/')) {
    res.writeHead(200, { 'Content-Type': 'text/plain' }); // no length: chunked
    res.write('chunk-one ');
    res.write('chunk-two ');
    res.end(req.url);
    return;
  }
  let body = 'ok ' + req.url;
  if (req.url.startsWith('/big/')) body = 'x'.repeat(+req.url.split('/')[2]);
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}).listen(port, host, () => console.log('READY'));
