// Calls echo.Echo/Reply with @grpc/grpc-js, loading proto/echo.proto at run
// time with @grpc/proto-loader (no generated code).
// Usage: node client.js ADDR MESSAGE   prints the reply message, or
// "error CODE_NAME: details" and exits 1.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [addr, message] = process.argv.slice(2);
if (!addr || message === undefined) {
  console.error('usage: node client.js ADDR MESSAGE');
  process.exit(2);
}

const protoPath = path.join(__dirname, '..', '..', '..', 'proto', 'echo.proto');
const def = protoLoader.loadSync(protoPath, { keepCase: true });
const echo = grpc.loadPackageDefinition(def).echo;
const client = new echo.Echo(addr, grpc.credentials.createInsecure());
const deadline = new Date(Date.now() + 20000);

client.Reply({ message }, { deadline }, (err, reply) => {
  if (err) {
    const name = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code);
    console.log(`error ${name}: ${err.details}`);
    process.exitCode = 1;
  } else {
    console.log(reply.message);
  }
  client.close();
});
