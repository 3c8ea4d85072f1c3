// ratings: Node.js http on the event loop, no downstream calls.
const http = require('http');
const port = Number(process.argv[2] || 9081);
http.createServer((req, res) => {
  const body = JSON.stringify({ id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}).listen(port, '127.0.0.1', () => console.log('READY'));
