// Runs fauxqs (version pinned in package.json) for the local stack.
//
// Used instead of node_modules/fauxqs/dist/cli.js because cli.js (1.9.2)
// hardcodes request logging on (it ignores FAUXQS_LOGGER) and binds 0.0.0.0;
// this listens on loopback only and logs requests only with FAUXQS_LOGGER=true.
// Everything else is fauxqs's own buildApp(), as cli.js uses it: queue URLs are
// http://sqs.<region>.localhost:<port>/000000000000/<name>.
//
//   FAUXQS_PORT=4566 node deploy/local/fauxqs.mjs
import { buildApp } from "fauxqs";

const port = Number.parseInt(process.env.FAUXQS_PORT ?? "4566", 10);
const host = process.env.FAUXQS_LISTEN ?? "127.0.0.1";

const app = buildApp({ logger: process.env.FAUXQS_LOGGER === "true" });

let closing = false;
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    console.log(`fauxqs: ${sig}, shutting down`);
    app.close().then(
      () => process.exit(0),
      (err) => {
        console.error("fauxqs: close failed:", err);
        process.exit(1);
      },
    );
  });
}

try {
  await app.listen({ port, host });
} catch (err) {
  console.error(`fauxqs: cannot listen on ${host}:${port}:`, err.message);
  process.exit(1);
}
console.log(`fauxqs listening on http://${host}:${port} (pid ${process.pid})`);
