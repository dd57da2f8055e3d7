// npm's oidc-provider (OpenID Certified) on loopback, as a stand-in for MPASSid or Suomi.fi.
// Configured by one JSON object in OIDC_CONFIG:
//   { "module": "<path to oidc-provider's index.js>", "port": 0 | n,
//     "clients": [ ...client metadata... ], "accounts": { "<sub>": { claims } },
//     "scopes": { "<scope>": ["claim", ...] }, "acrValues": [...] }
// The login is automatic: the account is the authorization request's login_hint (the test
// acts as the person) or "defaultAccount"; the acr is the first one asked for.
// Prints "listening <issuer>" when ready.
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(process.env.OIDC_CONFIG);
const { default: Provider } = await import(pathToFileURL(config.module).href);

const server = http.createServer();
await new Promise((resolve) => server.listen(config.port || 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const claimNames = Object.values(config.scopes).flat();
const provider = new Provider(issuer, {
  clients: config.clients,
  scopes: ['openid', ...Object.keys(config.scopes)],
  claims: { openid: ['sub'], ...config.scopes },
  // MPASSid and Suomi.fi put the identity's claims in the ID token itself.
  conformIdTokenClaims: false,
  acrValues: config.acrValues || [],
  cookies: { keys: ['a cookie key of the tests only'] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, id) {
    const claims = config.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    // A first-party client: consent is given for what it asks.
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope);
    grant.addOIDCClaims(['sub', 'acr', ...claimNames]);
    await grant.save();
    return grant;
  },
});

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const accountId = details.params.login_hint || config.defaultAccount;
  if (details.prompt.name !== 'login' || !config.accounts[accountId]) {
    ctx.status = 400;
    ctx.body = `no automatic ${details.prompt.name} for ${accountId}`;
    return undefined;
  }
  const acr = (details.params.acr_values || '').split(' ').filter(Boolean)[0];
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId, acr } }, {
    mergeWithLastSubmission: false,
  });
  return undefined;
});

server.on('request', provider.callback());
process.stdout.write(`listening ${issuer}\n`);
