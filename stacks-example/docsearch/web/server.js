// The web node: GET /search?q=words asks the indexer (a query port) and counts searches
// in the store service, which it finds through STORE_HOST and STORE_PORT.
import { createServer } from 'node:http';
import { connect } from 'quarry/runtime';

const port = Number(process.env.PORT ?? 8080);
const store = `http://${process.env.STORE_HOST ?? '127.0.0.1'}:${process.env.STORE_PORT ?? 6379}`;
const ports = await connect();

async function countSearch() {
  const res = await fetch(`${store}/searches/incr`, { method: 'POST' });
  return Number(await res.text());
}

createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    if (url.pathname === '/healthz') {
      res.end('ok');
    } else if (url.pathname === '/search') {
      const results = await ports.ask('search', { q: url.searchParams.get('q') ?? '' }, { timeoutMs: 2000 });
      const searches = await countSearch();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ q: url.searchParams.get('q'), results, searches }));
    } else {
      res.setHeader('content-type', 'text/plain');
      res.end('docsearch: try /search?q=river\n');
    }
  } catch (err) {
    res.statusCode = 502;
    res.end(`search failed: ${err.message}\n`);
  }
}).listen(port, () => console.log(`web listening on ${port}`));
