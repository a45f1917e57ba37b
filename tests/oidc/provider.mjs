// A standard OpenID Connect provider for shiplog's sign-in tests: npm's `oidc-provider`
// (an OpenID-certified implementation), installed into target/node-tools by
// `cargo xtask tools`, run under the machine's Node.js by `tests/oidc.rs`.
//
//   node tests/oidc/provider.mjs <port> <client id> <client secret> <redirect uri>
//
// Prints `listening <issuer>` once it accepts connections. Its login page accepts any login
// (the account id) and password, and consent is pre-granted. Besides the provider's own
// endpoints, the tests steer it through:
//
//   PUT  /test/accounts/<id>   {"name": …, "email": …, "groups": [...]}: the account's claims
//   POST /test/rotate          signs with a new key from now on (the old one leaves the JWKS)
//   POST /test/tamper          {"id_token": "expired" | "foreign-key"}: the next token
//                              answer's ID token expired an hour ago, or is signed by a key
//                              the JWKS does not hold (under the current key's id)
//   GET  /test/last-code       the code of the last redirect back to shiplog (to replay it)
//
// It listens on 127.0.0.1 only and stops when its standard input closes (the test ended).
import http from 'node:http';
import {
  generateKeyPair, exportJWK, importJWK, SignJWT, decodeJwt, decodeProtectedHeader,
} from 'jose';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const accounts = new Map();
let tamper = null;
let lastCode = null;
let generation = 0;

async function signingKey() {
  generation += 1;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `key-${generation}`, alg: 'RS256', use: 'sig' };
}

async function build(key) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    jwks: { keys: [key] },
    scopes: ['openid', 'profile', 'email', 'groups'],
    claims: { profile: ['name'], email: ['email'], groups: ['groups'] },
    // The claims in the ID token itself, as Keycloak, Okta and Entra ID send groups.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: ['shiplog-test-cookie-key'] },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          const account = accounts.get(id) ?? {};
          return {
            sub: id,
            name: account.name ?? id,
            email: account.email ?? `${id}@example.test`,
            groups: account.groups ?? [],
          };
        },
      };
    },
    // Consent is pre-granted: the tests are about shiplog, not the provider's consent page.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile email groups');
      await grant.save();
      return grant;
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    const location = ctx.response.get('location');
    if (location && location.startsWith(redirectUri)) {
      lastCode = new URL(location).searchParams.get('code') ?? lastCode;
    }
    if (ctx.path === '/token' && tamper && ctx.body && ctx.body.id_token) {
      const mode = tamper;
      tamper = null;
      ctx.body = { ...ctx.body, id_token: await tampered(ctx.body.id_token, mode) };
    }
  });
  return provider;
}

// The same claims, re-signed: expired with the provider's key, or with a stranger's key.
async function tampered(token, mode) {
  const claims = decodeJwt(token);
  const { kid } = decodeProtectedHeader(token);
  let key = currentKey;
  if (mode === 'expired') {
    const now = Math.floor(Date.now() / 1000);
    claims.iat = now - 7200;
    claims.exp = now - 3600;
  } else if (mode === 'foreign-key') {
    ({ privateKey: key } = await generateKeyPair('RS256'));
  }
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(key);
}

// The provider's current signing key, as a JWK for the provider and a key for `tampered`.
let currentKey;
async function keyFor() {
  const jwk = await signingKey();
  currentKey = await importJWK(jwk, 'RS256');
  return jwk;
}
let current = await build(await keyFor());

function body(req) {
  return new Promise((resolve, reject) => {
    let text = '';
    req.on('data', (chunk) => { text += chunk; });
    req.on('end', () => { try { resolve(text ? JSON.parse(text) : {}); } catch (e) { reject(e); } });
  });
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.url.startsWith('/test/accounts/') && req.method === 'PUT') {
      accounts.set(decodeURIComponent(req.url.slice('/test/accounts/'.length)), await body(req));
      res.writeHead(204).end();
    } else if (req.url === '/test/rotate' && req.method === 'POST') {
      current = await build(await keyFor());
      res.writeHead(204).end();
    } else if (req.url === '/test/last-code' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code: lastCode }));
    } else if (req.url === '/test/tamper' && req.method === 'POST') {
      tamper = (await body(req)).id_token;
      res.writeHead(204).end();
    } else {
      current.callback()(req, res);
    }
  } catch (error) {
    res.writeHead(500).end(String(error));
  }
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
