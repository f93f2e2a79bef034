// The real npm `oidc-provider`, configured like CAAIS or like EnviIAM, as a peer for aisgate's
// interop tests (tests/oidc_interop.rs) and OIDC login benchmark (benches/oidc_logins.rs).
//
//   node server.mjs CONFIG.json
//
// CONFIG (written by the Rust side):
//   { "profile": "caais" | "enviam",
//     "tls": { "cert": PEM path, "key": PEM path, "ca": PEM path (client certificates) },
//     "accounts": { "<sub>": { claims… } },
//     "access_token_ttl": seconds (optional) }
//
// It listens on two loopback ports chosen by the OS and prints ONE JSON line on stdout:
//   {"issuer": "...", "discovery": "...", "rest": "https://localhost:P", "cert": "https://127.0.0.1:Q"}
// Clients are registered afterwards, one JSON line each on stdin (the gateway's port is only
// known then); each is acknowledged with {"registered": "<client_id>"} on stdout. Closing stdin
// stops the server, so a killed test leaves no orphan behind.
//
// What is CAAIS-like (caais.md §1): issuer with a trailing slash; browser endpoints on one
// host (`rest`), the token endpoint on a second host (`cert`) that asks for a TLS client
// certificate; `tls_client_auth` bound to the certificate's subject DN (RFC 8705 §2.1.2);
// an RS256 key with NO `kid`, neither in the JWKS nor in the JWT header (oidc-provider always
// gives keys a kid, so the key is an ExternalSigningKey whose kid is cleared after start-up and
// the JWKS response is stripped of it); scopes `role` and `subject`.
// What is EnviIAM-like (enviam.md §5.5): public clients with PKCE (oidc-provider requires
// PKCE for `token_endpoint_auth_method: none`), an ES256 key with a `kid`, issuer without a
// trailing slash, form_post allowed.
// Both: automatic login of the client's fixed test account and automatic consent (no UI: a
// non-browser HTTP client following redirects completes it), refresh tokens always issued,
// RP-initiated logout and back-channel logout.

import { readFileSync } from 'node:fs';
import * as crypto from 'node:crypto';
import * as https from 'node:https';
import * as readline from 'node:readline';

import Provider, { ExternalSigningKey } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const caais = config.profile === 'caais';
const tls = {
  cert: readFileSync(config.tls.cert),
  key: readFileSync(config.tls.key),
  ca: readFileSync(config.tls.ca),
};

// An RS256 signing key oidc-provider cannot attach a kid to once started (see the header).
class KidlessRsaKey extends ExternalSigningKey {
  #private;
  #public;

  constructor() {
    super();
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.#private = privateKey;
    this.#public = publicKey;
    this.alg = 'RS256';
  }

  keyObject() {
    return this.#public;
  }

  async sign(data) {
    return crypto.sign('sha256', data, this.#private);
  }
}

function signingKeys() {
  if (caais) {
    return [new KidlessRsaKey()];
  }
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return [{ ...jwk, alg: 'ES256', use: 'sig', kid: 'enviam-es256-1' }];
}

// Clients live here rather than in `clients`: they are registered after start-up.
const registeredClients = new Map();
class ClientRegistry {
  async find(id) {
    return registeredClients.get(id);
  }
  async upsert(id, payload) {
    registeredClients.set(id, payload);
  }
  async destroy(id) {
    registeredClients.delete(id);
  }
}
const clientRegistry = new ClientRegistry();

// CAAIS claim names by scope (caais.md §1.8); every other account claim is `profile`.
const CAAIS_SCOPES = {
  role: ['access_roles', 'activity_roles'],
  subject: ['legal_entity_shorcut', 'lei', 'legal_entity_name', 'legal_entity_email', 'institution_type',
    'public_organization_identifier', 'authorized_private_entity_personal_data_user_identifier'],
  contact: ['email', 'phone_number'],
};
const scoped = new Set(Object.values(CAAIS_SCOPES).flat());
const profileClaims = [...new Set(Object.values(config.accounts).flatMap((claims) => Object.keys(claims)))]
  .filter((name) => name !== 'sub' && !scoped.has(name));

async function listen(server) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server.address().port;
}

// Both hosts serve the same provider; only the `cert` host asks for a client certificate.
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const restServer = https.createServer({ ...tls }, (req, res) => handler(req, res));
const certServer = https.createServer(
  { ...tls, requestCert: true, rejectUnauthorized: false },
  (req, res) => handler(req, res),
);
const restPort = await listen(restServer);
const certPort = await listen(certServer);
const restBase = `https://localhost:${restPort}`;
const certBase = `https://127.0.0.1:${certPort}`;
const issuer = caais ? `${restBase}/` : restBase;

const keys = signingKeys();
const ttl = config.access_token_ttl;

const provider = new Provider(issuer, {
  extraClientMetadata: { properties: ['aisgate_account'] },
  adapter: (name) => (name === 'Client' ? clientRegistry : new MemoryAdapter(name)),
  jwks: { keys },
  claims: { openid: ['sub'], profile: profileClaims, ...(caais ? CAAIS_SCOPES : {}) },
  // CAAIS and EnviIAM put the user's claims in the ID token itself (caais.md §1.6).
  conformIdTokenClaims: false,
  clientAuthMethods: caais ? ['tls_client_auth'] : ['none'],
  // The browser cookies of the provider are signed with a key made per run.
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    userinfo: { enabled: true },
    externalSigningSupport: { enabled: caais, ack: caais ? 'experimental-01' : undefined },
    mTLS: {
      enabled: true,
      tlsClientAuth: true,
      certificateBoundAccessTokens: false,
      getCertificate: (ctx) => ctx.socket.getPeerX509Certificate?.(),
      certificateAuthorized: (ctx) => ctx.socket.authorized === true,
      certificateSubjectMatches: (ctx, property, expected) => {
        if (property !== 'tls_client_auth_subject_dn') {
          return false;
        }
        const subject = ctx.socket.getPeerX509Certificate?.()?.subject;
        return subject !== undefined && subject.split('\n').join(',') === expected;
      },
    },
  },
  // Refresh tokens for every client allowed the grant (not only with offline_access).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: ttl ? { AccessToken: ttl } : {},
  findAccount: async (_ctx, sub) => {
    const claims = config.accounts[sub];
    if (!claims) {
      return undefined;
    }
    return { accountId: sub, claims: async () => ({ ...claims, sub }) };
  },
  // Automatic consent: the grant covers whatever the client asked for.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    const existing = grantId && await ctx.oidc.provider.Grant.find(grantId);
    if (existing) {
      return existing;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    await grant.save();
    return grant;
  },
  // Outgoing back-channel logout requests go to the gateway on loopback, which the library's
  // SSRF guard would refuse: this fetch ignores the guarded dispatcher.
  fetch: (url, { dispatcher: _guarded, ...options }) => globalThis.fetch(url, options),
  clientBasedCORS: () => false,
});
// The CAAIS JWKS carries no kid (caais.md §1.2); the token endpoint is on the `cert` host.
provider.use(async (ctx, next) => {
  await next();
  if (caais && ctx.path === '/jwks' && ctx.body?.keys) {
    ctx.body = { keys: ctx.body.keys.map(({ kid: _kid, ...key }) => key) };
  }
  if (ctx.path === '/.well-known/openid-configuration' && ctx.body?.token_endpoint) {
    ctx.body = { ...ctx.body, token_endpoint: `${certBase}/token` };
  }
});
if (caais) {
  for (const key of keys) {
    key.kid = undefined;
  }
}

const callback = provider.callback();
handler = async (req, res) => {
  // Automatic login: the interaction logs in the client's fixed account and returns at once.
  const match = /^\/interaction\/([^/?]+)/.exec(req.url);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    const client = registeredClients.get(details.params.client_id);
    const result = details.prompt.name === 'login'
      ? { login: { accountId: client.aisgate_account } }
      : { consent: {} };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  } catch (err) {
    process.stderr.write(`interaction failed: ${err}\n`);
    res.statusCode = 500;
    res.end();
  }
};

provider.on('backchannel.error', (_ctx, err, client) => {
  process.stderr.write(`back-channel logout to ${client.clientId} failed: ${err}\n`);
});
provider.on('server_error', (_ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));

// A registration line: oidc-provider client metadata plus `aisgate_account`, the account the
// automatic login signs in for this client.
const input = readline.createInterface({ input: process.stdin });
input.on('line', async (line) => {
  const client = JSON.parse(line);
  registeredClients.set(client.client_id, client);
  process.stdout.write(`${JSON.stringify({ registered: client.client_id })}\n`);
});
input.on('close', () => process.exit(0));

process.stdout.write(`${JSON.stringify({
  issuer,
  discovery: `${restBase}/.well-known/openid-configuration`,
  rest: restBase,
  cert: certBase,
})}\n`);
