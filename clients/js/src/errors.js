// @ts-check
import { ErrorCode } from './names.js';

/** An error from the edge's catalogue: `code`, `retryable`, and a hint a person can act on. */
export class GlassboxError extends Error {
  /**
   * @param {{code?: string, message?: string, hint?: string, retryable?: boolean}} body
   * @param {number} [status] HTTP status or WebSocket close code, when there was one
   */
  constructor(body, status) {
    super(body.message || body.code || 'request failed');
    this.name = 'GlassboxError';
    /** A catalogue code such as THREAD_BUSY, or HTTP_<status> when the body had none. */
    this.code = body.code || 'UNKNOWN';
    this.hint = body.hint || '';
    this.retryable = Boolean(body.retryable);
    /** The HTTP status or WebSocket close code, when there was one. */
    this.status = status;
  }
}

/** The error a failed HTTP response carries (the catalogue's body, or its status alone). @param {Response} response */
export async function errorOf(response) {
  let body = {};
  try {
    body = (await response.json()).error ?? {};
  } catch {
    // not JSON: a proxy's page, say
  }
  const retryable = response.status >= 500 || response.status === 429;
  return new GlassboxError({ code: `HTTP_${response.status}`, retryable, ...body }, response.status);
}

/** The connection went away under a request. @param {number} [code] */
export function connectionLost(code) {
  return new GlassboxError({ code: ErrorCode.UNAVAILABLE, message: 'connection lost', retryable: true }, code);
}
