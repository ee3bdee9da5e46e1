// SPDX-License-Identifier: MIT
//
// A real, OpenID-certified provider (the npm package oidc-provider) on a loopback HTTPS port,
// for latchkey's interop tests (tests/interop/test_interop.c). Test use only.
//
// node provider.mjs --cert CERT --key KEY --secret-file FILE --redirect-uri URI
//                   [--port-file FILE] [--port N] [--host 127.0.0.1] [--alg RS256|ES256]
//                   [--basic-client ID] [--post-client ID] [--device]
//
// - The issuer is https://HOST:PORT. The port is random unless --port is given; it is written
//   to --port-file (via a temporary file and a rename) once the server listens.
// - Two confidential clients share the secret read from --secret-file (never from argv):
//   --basic-client (client_secret_basic, default "latchkey-basic") and --post-client
//   (client_secret_post, default "latchkey-post"), both with the one redirect URI, the
//   authorization_code and refresh_token grants.
// - Signing keys are generated at start: an RSA 2048 key (--alg RS256, the default) or a P-256
//   key (--alg ES256); the clients ask for id_tokens signed with that algorithm.
// - devInteractions (oidc-provider's own login and consent pages) stand in for the person's
//   pages; any login name is accepted and becomes the account id (the test uses "root").
// - PKCE (S256) is required; revocation is on; a refresh token is issued when the grant holds
//   offline_access, which oidc-provider keeps only with prompt=consent (OIDC Core §11).
// - --device turns on the device authorization grant (features.deviceFlow, RFC 8628): the
//   discovery document names its endpoint and both clients may use the grant.
// - Every claim of the account goes into the id_token (conformIdTokenClaims off), so
//   preferred_username, which latchkey maps to the local user, is there.
//
// Logs go to stderr only; stdout stays silent. SIGTERM and SIGINT stop the server.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

// Nothing of ours or of a dependency may write to stdout.
console.log = console.error;
console.info = console.error;

function die(message) {
  console.error(`provider.mjs: ${message}`);
  process.exit(2);
}

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      cert: { type: 'string' },
      key: { type: 'string' },
      'secret-file': { type: 'string' },
      'redirect-uri': { type: 'string' },
      'port-file': { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      alg: { type: 'string', default: 'RS256' },
      'basic-client': { type: 'string', default: 'latchkey-basic' },
      'post-client': { type: 'string', default: 'latchkey-post' },
      device: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (err) {
  die(err.message);
}
for (const required of ['cert', 'key', 'secret-file', 'redirect-uri']) {
  if (!opts[required]) die(`--${required} is required`);
}
if (!/^(0|[1-9][0-9]{0,4})$/.test(opts.port) || Number(opts.port) > 65535) {
  die(`--port: '${opts.port}' is not a port number`);
}
if (opts.alg !== 'RS256' && opts.alg !== 'ES256') die(`--alg: '${opts.alg}' is not RS256 or ES256`);

function readSecret(path) {
  let secret;
  try {
    secret = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    die(`cannot read the client secret file ${path}: ${err.code || err.message}`);
  }
  if (secret.length === 0 || secret.length > 1024) {
    die(`the client secret in ${path} is empty or too long`);
  }
  return secret;
}

function signingKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}` };
}

const secret = readSecret(opts['secret-file']);
let tlsOptions;
try {
  tlsOptions = { cert: readFileSync(opts.cert), key: readFileSync(opts.key) };
} catch (err) {
  die(`cannot read the certificate or key: ${err.code || err.message}`);
}

function client(id, method) {
  return {
    client_id: id,
    client_secret: secret,
    token_endpoint_auth_method: method,
    redirect_uris: [opts['redirect-uri']],
    grant_types: ['authorization_code', 'refresh_token',
      ...(opts.device ? ['urn:ietf:params:oauth:grant-type:device_code'] : [])],
    response_types: ['code'],
    id_token_signed_response_alg: opts.alg,
  };
}

// Listen first, so the issuer can name the port a random bind gave us.
let handler = (req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = createServer(tlsOptions, (req, res) => handler(req, res));
server.on('error', (err) => {
  die(`cannot listen on ${opts.host}:${opts.port}: ${err.code || err.message}`);
});
server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address();
  const issuer = `https://${opts.host}:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      client(opts['basic-client'], 'client_secret_basic'),
      client(opts['post-client'], 'client_secret_post'),
    ],
    jwks: { keys: [signingKey(opts.alg)] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
    },
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, preferred_username: sub, name: `Test account ${sub}` };
        },
      };
    },
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      deviceFlow: { enabled: opts.device },
    },
    enabledJWA: { idTokenSigningAlgValues: [opts.alg] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: 3600,
      RefreshToken: 86400,
      Interaction: 600,
      Session: 3600,
      Grant: 86400,
    },
  });

  // One stderr line per refusal, so a failed test shows why the provider said no.
  for (const event of ['grant.error', 'authorization.error', 'revocation.error',
    'server_error', 'userinfo.error', 'discovery.error', 'jwks.error']) {
    provider.on(event, (ctx, err) => {
      const e = err || ctx;
      console.error(`provider.mjs: ${event}: ${e.error || e.name}: ${e.error_description || ''}` +
        `${e.error_detail ? ` (${e.error_detail})` : ''}`);
    });
  }
  provider.on('grant.success', () => console.error('provider.mjs: token endpoint: granted'));
  provider.on('grant.revoked', () => console.error('provider.mjs: grant revoked'));

  handler = provider.callback();

  if (opts['port-file']) {
    const tmp = `${opts['port-file']}.tmp`;
    writeFileSync(tmp, `${port}\n`, { mode: 0o644 });
    renameSync(tmp, opts['port-file']);
  }
  console.error(`provider.mjs: oidc-provider listening, issuer ${issuer}, ${opts.alg} keys`);
});

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
