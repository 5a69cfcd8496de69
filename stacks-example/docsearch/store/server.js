// A tiny key-value store over HTTP, standing in for redis (there is no registry to pull
// redis from here): GET /KEY reads, POST /KEY/incr adds one and answers the new value.
import { createServer } from 'node:http';

const values = new Map();
const port = Number(process.env.PORT ?? 6379);

createServer((req, res) => {
  const [, key = '', action] = (req.url ?? '/').split('/');
  if (req.method === 'POST' && action === 'incr') {
    const value = (values.get(key) ?? 0) + 1;
    values.set(key, value);
    res.end(String(value));
  } else if (req.method === 'GET') {
    res.end(String(values.get(key) ?? 0));
  } else {
    res.statusCode = 405;
    res.end();
  }
}).listen(port, () => console.log(`store listening on ${port}`));
