// Test client: Node.js http.request with a keep-alive agent, requests in order.
// usage: node client.js URL...   prints "STATUS LEN URL" per request.
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const urls = process.argv.slice(2);
(async () => {
  for (const u of urls) {
    await new Promise((resolve, reject) => {
      const req = http.request(u, { agent }, (r) => {
        let n = 0;
        r.on('data', (d) => { n += d.length; });
        r.on('end', () => { console.log(r.statusCode, n, u); resolve(); });
      });
      req.on('error', reject);
      req.end();
    });
  }
  agent.destroy();
})().catch((e) => { console.error(e); process.exit(1); });
