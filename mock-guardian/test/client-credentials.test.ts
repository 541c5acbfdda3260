import { createRemoteJWKSet, jwtVerify } from 'jose';
import { clientCredentialsGrant, ResponseBodyError } from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A2A, HR_AGENT, postForm, relyingParty, startTenant, type RunningTenant } from './relying-party.ts';

describe('client credentials (Auth0 M2M tokens)', () => {
  let running: RunningTenant;
  beforeAll(async () => {
    running = await startTenant();
  });
  afterAll(() => running.tenant.close());

  it('publishes discovery with Auth0 paths and a trailing-slash issuer', async () => {
    const response = await fetch(new URL('.well-known/openid-configuration', running.issuer));
    const metadata = (await response.json()) as Record<string, unknown>;
    expect(metadata.issuer).toBe(running.issuer);
    expect(running.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(metadata.token_endpoint).toBe(`${running.issuer}oauth/token`);
    expect(metadata.backchannel_authentication_endpoint).toBe(`${running.issuer}bc-authorize`);
    expect(metadata.jwks_uri).toBe(`${running.issuer}.well-known/jwks.json`);
    // As Auth0's: poll only; ping is a labelled local extension.
    expect(metadata.backchannel_token_delivery_modes_supported).toEqual(['poll']);
    expect(metadata.x_local_extensions).toEqual({ backchannel_token_delivery_modes_supported: ['ping'] });
  });

  it('issues an RS256 JWT for the audience with Auth0 M2M claims', async () => {
    const config = await relyingParty(running.issuer, A2A);
    const tokens = await clientCredentialsGrant(config, { audience: 'https://staff0/agent' });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('read:employee_status');
    const { payload, protectedHeader } = await jwtVerify(
      tokens.access_token,
      createRemoteJWKSet(new URL('.well-known/jwks.json', running.issuer)),
      { issuer: running.issuer, audience: 'https://staff0/agent' },
    );
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload).toMatchObject({
      iss: running.issuer,
      aud: 'https://staff0/agent',
      scope: 'read:employee_status',
      azp: 'a2a-client',
      sub: 'a2a-client@clients',
      gty: 'client-credentials',
    });
    expect(payload.client_id).toBeUndefined();
    expect(typeof payload.iat).toBe('number');
    expect(payload.exp).toBe((payload.iat as number) + 86_400);
  });

  it('accepts RFC 8707 resource as well as audience', async () => {
    const config = await relyingParty(running.issuer, HR_AGENT);
    const tokens = await clientCredentialsGrant(config, { resource: `${running.issuer}api/v2/`, scope: 'read:users' });
    expect(tokens.scope).toBe('read:users');
  });

  it('refuses an API the application has no client grant for with 403 access_denied', async () => {
    const config = await relyingParty(running.issuer, A2A);
    const error = await clientCredentialsGrant(config, { audience: 'https://staff0/api' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseBodyError);
    expect((error as ResponseBodyError).error).toBe('access_denied');
    expect((error as ResponseBodyError).status).toBe(403);
    expect((error as ResponseBodyError).error_description).toContain('Client is not authorized to access "https://staff0/api"');
  });

  it('refuses an unknown API and a request without audience with 403 access_denied', async () => {
    const unknown = await postForm(running.issuer, '/oauth/token', {
      grant_type: 'client_credentials',
      client_id: A2A.clientId,
      client_secret: A2A.clientSecret,
      audience: 'https://nowhere.example/',
    });
    expect(unknown.status).toBe(403);
    expect(unknown.body).toEqual({ error: 'access_denied', error_description: 'Service not found: https://nowhere.example/' });
    const none = await postForm(running.issuer, '/oauth/token', {
      grant_type: 'client_credentials',
      client_id: A2A.clientId,
      client_secret: A2A.clientSecret,
    });
    expect(none.status).toBe(403);
    expect(none.body.error).toBe('access_denied');
  });

  it('answers invalid_client to a wrong secret', async () => {
    const config = await relyingParty(running.issuer, { clientId: A2A.clientId, clientSecret: 'not-the-secret-at-all' });
    const error = await clientCredentialsGrant(config, { audience: 'https://staff0/agent' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseBodyError);
    expect((error as ResponseBodyError).error).toBe('invalid_client');
    expect((error as ResponseBodyError).status).toBe(401);
  });

  it('accepts HTTP Basic client authentication too', async () => {
    const basic = Buffer.from(`${A2A.clientId}:${A2A.clientSecret}`).toString('base64');
    const response = await postForm(
      running.issuer,
      '/oauth/token',
      { grant_type: 'client_credentials', audience: 'https://staff0/agent' },
      { authorization: `Basic ${basic}` },
    );
    expect(response.status).toBe(200);
  });

  it('refuses the CIBA grant to an application without it', async () => {
    const response = await postForm(running.issuer, '/bc-authorize', {
      client_id: A2A.clientId,
      client_secret: A2A.clientSecret,
      scope: 'openid',
      login_hint: JSON.stringify({ format: 'iss_sub', iss: running.issuer, sub: 'auth0|jdoe' }),
      binding_message: 'hello',
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('unauthorized_client');
  });
});
