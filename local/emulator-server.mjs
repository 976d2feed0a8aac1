// The embedded AWS emulator (fauxqs: SQS, SNS and S3 on one port), bound to 127.0.0.1 only.
// Usage: node [--import ./sqlite-stub.mjs] emulator-server.mjs [port]   (0 = any free port; the build bundles
// it as dist/emulator.mjs, which needs no hook)
// Prints one line `EMULATOR_URL=http://127.0.0.1:PORT` when it is listening; stops on SIGINT/SIGTERM.
import { buildApp } from "fauxqs";

const app = buildApp({ logger: false });
const url = await app.listen({ port: Number(process.argv[2] ?? 0), host: "127.0.0.1" });
process.stdout.write(`EMULATOR_URL=${url}\n`);
const stop = () => app.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
// Exit with the parent: the parent keeps our stdin open while it lives.
process.stdin.on("end", stop);
process.stdin.resume();
