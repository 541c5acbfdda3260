import type { LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { StreamResponse, Task, TaskPushNotificationConfig } from '@a2a-js/sdk';
import {
  V1PushNotificationSerializer,
  type PushNotificationSender,
  type PushNotificationStore,
  type ServerCallContext,
  type StoredPushNotificationConfig,
} from '@a2a-js/sdk/server';
import { RequestMalformedError } from '@a2a-js/sdk/errors';
import { WebhookRefusedError, type CheckedWebhook, type WebhookPolicy } from './webhook-policy.ts';

/**
 * Push notifications (A2A §9) under the webhook policy. Replaces the SDK's
 * DefaultPushNotificationSender, which fetches any stored URL, follows
 * redirects and logs the full URL (paths and queries often carry secrets).
 */

export interface PushSenderOptions {
  store: PushNotificationStore;
  policy: WebhookPolicy;
  /** Deadline of one delivery, connection to last byte. Default 5000 ms. */
  timeoutMs?: number;
  /** Where failed deliveries are reported; lines name the webhook's origin only. */
  log?: (line: string) => void;
}

const TOKEN_HEADER = 'X-A2A-Notification-Token';

export function createPushSender(options: PushSenderOptions): PushNotificationSender {
  const timeoutMs = options.timeoutMs ?? 5000;
  const log = options.log ?? ((line: string) => console.warn(line));
  const serializer = new V1PushNotificationSerializer();
  // One chain per task keeps a webhook's notifications in the order the task produced them.
  const chains = new Map<string, Promise<void>>();

  const deliver = async (config: TaskPushNotificationConfig, taskId: string, streamResponse: StreamResponse, task?: Task) => {
    let origin = '(invalid URL)';
    try {
      origin = URL.parse(config.url)?.origin ?? origin;
      const webhook = await options.policy.check(config.url);
      const { body, contentType } = serializer.serialize(streamResponse, task);
      const status = await post(webhook, { 'Content-Type': contentType, ...authHeaders(config) }, body, timeoutMs);
      // Redirects are never followed: a 3xx could point anywhere, the policy's refused addresses included.
      if (status < 200 || status >= 300) log(`push notification for task ${taskId} to ${origin} answered HTTP ${status}`);
    } catch (error) {
      const reason =
        error instanceof WebhookRefusedError ? `refused (${error.rule})` : `failed: ${describeNetworkError(error, timeoutMs)}`;
      log(`push notification for task ${taskId} to ${origin} ${reason}`);
    }
  };

  return {
    async send(streamResponse: StreamResponse, context: ServerCallContext, task?: Task) {
      const taskId = taskIdOf(streamResponse);
      if (!taskId) return;
      const stored: StoredPushNotificationConfig[] = options.store.loadWithMetadata
        ? await options.store.loadWithMetadata(taskId, context)
        : (await options.store.load(taskId, context)).map((config) => ({ config, wireVersion: '1.0' }));
      if (stored.length === 0) return;
      const previous = chains.get(taskId) ?? Promise.resolve();
      const next = previous.then(async () => {
        await Promise.all(stored.map(({ config }) => deliver(config, taskId, streamResponse, task)));
      });
      chains.set(taskId, next);
      await next.finally(() => {
        if (chains.get(taskId) === next) chains.delete(taskId);
      });
    },
  };
}

/**
 * The push-config store the request handler sees: a URL the policy refuses is
 * never stored, and the caller gets A2A's invalid-params error (JSON-RPC
 * -32602, HTTP 400) naming the rule.
 */
export function createCheckedPushStore(inner: PushNotificationStore, policy: WebhookPolicy): PushNotificationStore {
  const store: PushNotificationStore = {
    async save(taskId, context, config) {
      try {
        await policy.check(config.url);
      } catch (error) {
        if (error instanceof WebhookRefusedError) {
          throw new RequestMalformedError({ message: error.message, metadata: { rule: error.rule } });
        }
        throw error;
      }
      await inner.save(taskId, context, config);
    },
    load: (taskId, context) => inner.load(taskId, context),
    delete: (taskId, context, configId) => inner.delete(taskId, context, configId),
  };
  if (inner.loadWithMetadata) {
    const loadWithMetadata = inner.loadWithMetadata.bind(inner);
    store.loadWithMetadata = (taskId, context) => loadWithMetadata(taskId, context);
  }
  return store;
}

function taskIdOf(streamResponse: StreamResponse): string | undefined {
  const payload = streamResponse.payload;
  if (!payload) return undefined;
  return payload.$case === 'task' ? payload.value.id : payload.value.taskId || undefined;
}

/** A2A §9.2: `authentication` becomes an Authorization header; the legacy `token` its own header. */
function authHeaders(config: TaskPushNotificationConfig): Record<string, string> {
  if (config.authentication?.scheme && config.authentication.credentials) {
    return { Authorization: `${config.authentication.scheme} ${config.authentication.credentials}` };
  }
  return config.token ? { [TOKEN_HEADER]: config.token } : {};
}

/** POSTs to the checked addresses only: the connection's lookup answers with them, never asking DNS again. */
function post(webhook: CheckedWebhook, headers: Record<string, string>, body: string, timeoutMs: number): Promise<number> {
  const pinned: LookupAddress[] = webhook.addresses.map((a) => ({ address: a.address, family: a.family }));
  const lookup: RequestOptions['lookup'] = (_hostname, lookupOptions, callback) => {
    const first = pinned[0];
    if (lookupOptions.all) (callback as (error: null, addresses: LookupAddress[]) => void)(null, pinned);
    else if (first) (callback as (error: null, address: string, family: number) => void)(null, first.address, first.family);
  };
  const send = webhook.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      webhook.url,
      {
        method: 'POST',
        headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
        lookup,
        signal: AbortSignal.timeout(timeoutMs),
        agent: false,
      },
      (res: IncomingMessage) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', (error) => reject(error));
    req.end(body);
  });
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ABORT_ERR' || (error as Error).name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  // Never the message: Node's include the address, and undici's can include the URL.
  return typeof code === 'string' ? code : 'the connection failed';
}
