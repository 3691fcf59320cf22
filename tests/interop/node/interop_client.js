// grpc interop client cases server_streaming and ping_pong
// (doc/interop-test-descriptions.md in grpc/grpc) with @grpc/grpc-js, loading
// the vendored grpc.testing schemas at run time with @grpc/proto-loader.
// Usage: node interop_client.js ADDR CASE...   prints "PASS case" or
// "FAIL case: reason" per case; exits 1 if any failed, 2 on bad usage.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [addr, ...cases] = process.argv.slice(2);
const CASES = { server_streaming: serverStreaming, ping_pong: pingPong };
if (!addr || cases.length === 0 || cases.some((c) => !(c in CASES))) {
  console.error(`usage: node interop_client.js ADDR CASE... (cases: ${Object.keys(CASES).join(', ')})`);
  process.exit(2);
}

const protoDir = path.join(__dirname, '..', '..', '..', 'proto');
const def = protoLoader.loadSync('src/proto/grpc/testing/test.proto', {
  keepCase: true,
  includeDirs: [protoDir],
});
const testing = grpc.loadPackageDefinition(def).grpc.testing;
const REQUEST_SIZES = [27182, 8, 1828, 45904];
const RESPONSE_SIZES = [31415, 9, 2653, 58979];

function deadline() {
  return new Date(Date.now() + 20000);
}

function checkPayload(response, size, what) {
  const body = response.payload && response.payload.body;
  if (!body || body.length !== size) {
    throw new Error(`${what}: payload is ${body ? body.length : 'missing'} bytes, expected ${size}`);
  }
  if (!body.every((b) => b === 0)) {
    throw new Error(`${what}: payload is not all zeros`);
  }
}

// Resolves when the call ends with OK after exactly the expected responses.
function serverStreaming(client) {
  return new Promise((resolve, reject) => {
    const call = client.StreamingOutputCall(
      { response_parameters: RESPONSE_SIZES.map((size) => ({ size })) },
      { deadline: deadline() },
    );
    const got = [];
    call.on('data', (r) => got.push(r));
    call.on('error', reject);
    call.on('end', () => {
      try {
        if (got.length !== 4) throw new Error(`${got.length} responses, expected 4`);
        got.forEach((r, i) => checkPayload(r, RESPONSE_SIZES[i], `response ${i + 1}`));
        resolve();
      } catch (e) {
        reject(e);
      }
    });
  });
}

// Sends each request only after the reply to the previous one arrived.
function pingPong(client) {
  return new Promise((resolve, reject) => {
    const call = client.FullDuplexCall({ deadline: deadline() });
    let i = 0;
    const send = () =>
      call.write({
        response_parameters: [{ size: RESPONSE_SIZES[i] }],
        payload: { body: Buffer.alloc(REQUEST_SIZES[i]) },
      });
    call.on('data', (r) => {
      try {
        if (i >= 4) throw new Error('a response after the fourth');
        checkPayload(r, RESPONSE_SIZES[i], `response ${i + 1}`);
      } catch (e) {
        call.cancel();
        reject(e);
        return;
      }
      i += 1;
      if (i < 4) send();
      else call.end();
    });
    call.on('error', reject);
    call.on('end', () => (i === 4 ? resolve() : reject(new Error(`${i} responses, expected 4`))));
    send();
  });
}

(async () => {
  const client = new testing.TestService(addr, grpc.credentials.createInsecure());
  let failed = 0;
  for (const name of cases) {
    try {
      await CASES[name](client);
      console.log(`PASS ${name}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name}: ${e.code !== undefined ? `code ${e.code} ` : ''}${e.message}`);
    }
  }
  client.close();
  process.exitCode = failed ? 1 : 0;
})();
