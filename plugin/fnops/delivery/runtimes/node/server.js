'use strict';
/*
 * The fnops function server for the node runtimes: runs inside the function image, calls
 * `handle(event, context)`. Node's own `http` module only — no npm package, so the image
 * needs nothing fetched for the server, and the contract is the python runtime's
 * (runtimes/python/server.py), point for point.
 *
 * The handler contract
 * --------------------
 *     exports.handle = async (event, context) => { ... }   // or a plain function; ESM `export` too
 *
 * FNOPS_HANDLER names it as module:function; the module is a file of the function folder
 * without its extension (`handler` -> handler.js, .mjs or .cjs; `lib.orders` -> lib/orders.js).
 *
 * `event` is the request body, decoded by its content type: JSON (application/json or any
 * `+json`) -> the parsed value; text/*, form data or no content type -> a string; anything
 * else -> a Buffer; no body -> null. For a CloudEvent, `event` is its data.
 *
 * `context` is a plain object with the python runtime's fields:
 *     method      "GET", "POST", …
 *     path        "/orders/7" (no query)
 *     query       the raw query string ("" when there is none)
 *     params      the query parsed (a repeated name keeps its last value)
 *     headers     the request headers, names in lower case
 *     cloudevent  null for a plain request; for a CloudEvent (binary or structured mode) its
 *                 attributes: specversion, id, source, type, time, subject, datacontenttype,
 *                 extensions
 * and one function, `context.reply(body, status, headers)`, which is what python's
 * `(body, status)` / `(body, status, headers)` tuples are (JavaScript has no tuples, and an
 * array is a JSON reply). It is not enumerable: JSON.stringify(context) shows the fields only.
 *
 * What `handle` returns (or its promise resolves to) becomes the reply:
 *     null / undefined            204 No Content
 *     object, array, number, bool 200 application/json
 *     string                      200 text/plain; charset=utf-8
 *     Buffer / Uint8Array         200 application/octet-stream
 *     context.reply(body, status[, headers])   that status and those headers (a content-type
 *                                 there wins); context.reply(null, 202) is an empty 202
 *     an object with "specversion"  a CloudEvent reply in binary mode: its attributes as ce-*
 *                                 headers (percent-encoded where a header needs it), its `data`
 *                                 as the body. `type` and `source` are required, `id` defaults
 *                                 to a new UUID, `datacontenttype` to what `data` is;
 *                                 `data_base64` carries bytes. It may sit in context.reply.
 *     a throw / rejection         500 {"error":"internal error"}; the stack is logged, never sent.
 *
 * Environment: PORT (default 8080), HOST (default 0.0.0.0), FNOPS_HANDLER (default
 * handler:handle), FNOPS_GRACEFUL_SECONDS (default 25: in-flight requests finish after
 * SIGTERM), FNOPS_MAX_BODY (bytes, default 10 MiB), FNOPS_ACCESS_LOG=1 (a line per request).
 * `fnops run` also sets FNOPS_LISTEN_FD (serve a socket it holds, so a reload never refuses a
 * connection) and FNOPS_READY_FD (where to say "ready", or why the handler did not load);
 * images never set these.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const MAX_BODY = parseInt(process.env.FNOPS_MAX_BODY || String(10 * 1024 * 1024), 10);
const CE_JSON = 'application/cloudevents+json';
// CloudEvents 1.0: attribute names are lower-case ASCII letters and digits (20 at most).
const CE_NAME = /^[a-z0-9]{1,20}$/;
const REPLY = Symbol('fnops.reply');
const EXTENSIONS = ['.js', '.mjs', '.cjs'];

function log(level, name, message) {
  process.stderr.write(`${level} ${name}: ${message}\n`);
}

class ReplyError extends Error {}
class LookupError extends Error {}

class BadRequest extends Error {}

function moduleFile(spec) {
  const modName = spec.split(':')[0];
  const base = path.resolve(process.cwd(), ...modName.split('.'));
  for (const ext of EXTENSIONS) {
    if (fs.existsSync(base + ext)) return base + ext;
  }
  const e = new Error(`no ${modName}.js, .mjs or .cjs in ${process.cwd()} (FNOPS_HANDLER=${spec})`);
  e.code = 'FNOPS_NO_MODULE';
  throw e;
}

async function loadHandler(spec) {
  const name = spec.includes(':') ? spec.slice(spec.indexOf(':') + 1) : 'handle';
  const file = moduleFile(spec);
  // import() loads CommonJS and ES modules alike; a CommonJS module's exports are also its default.
  const mod = await import(pathToFileURL(file).href);
  let fn = mod[name];
  if (typeof fn !== 'function' && mod.default && typeof mod.default[name] === 'function') fn = mod.default[name];
  if (typeof fn !== 'function') {
    throw new LookupError(`module '${spec.split(':')[0]}' has no function '${name}' (FNOPS_HANDLER=${spec})`);
  }
  return fn;
}

function unquote(text) {
  // The HTTP binding percent-encodes what a header cannot carry; a stray '%' stays as it is.
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/(%[0-9A-Fa-f]{2})+/g, (m) => {
      try { return decodeURIComponent(m); } catch { return m; }
    });
  }
}

function mediaType(contentType) {
  return (contentType || '').split(';')[0].trim().toLowerCase();
}

function decode(body, contentType) {
  if (!body || body.length === 0) return null;
  const ct = mediaType(contentType);
  if (ct === 'application/json' || ct.endsWith('+json')) {
    try {
      return JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new BadRequest(e.message);
    }
  }
  if (ct.startsWith('text/') || ct === '' || ct === 'application/x-www-form-urlencoded') return body.toString('utf8');
  return body;
}

function headersOf(req) {
  const out = {};
  for (const [k, v] of Object.entries(req.headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function params(query) {
  // As python's parse_qsl: blank values are left out, a repeated name keeps its last value.
  const out = {};
  for (const [k, v] of new URLSearchParams(query)) {
    if (v !== '') out[k] = v;
  }
  return out;
}

function makeContext(method, rawPath, query, headers, cloudevent) {
  const context = { method, path: unquote(rawPath), query, params: params(query), headers, cloudevent };
  Object.defineProperty(context, 'reply', {
    enumerable: false,
    value: (body, status = 200, replyHeaders = {}) => ({ [REPLY]: true, body, status, headers: replyHeaders }),
  });
  return context;
}

/** -> [event, context]; BadRequest for a malformed CloudEvent or JSON body. */
function parseRequest(req, body) {
  const headers = headersOf(req);
  const url = req.url || '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  const ctype = headers['content-type'] || '';
  if (mediaType(ctype) === CE_JSON) {
    let ce;
    try {
      ce = JSON.parse(body.length ? body.toString('utf8') : '{}');
    } catch (e) {
      throw new BadRequest(e.message);
    }
    if (!ce || typeof ce !== 'object' || Array.isArray(ce) || !['specversion', 'id', 'type', 'source'].every((a) => a in ce)) {
      throw new BadRequest('structured CloudEvent needs specversion, id, source and type');
    }
    let data = null;
    if ('data_base64' in ce) {
      data = decode(Buffer.from(String(ce.data_base64), 'base64'), ce.datacontenttype || '');
      delete ce.data_base64;
    } else if ('data' in ce) {
      data = ce.data;
      delete ce.data;
    }
    return [data, makeContext(req.method, rawPath, query, headers, ce)];
  }
  let cloudevent = null;
  if ('ce-specversion' in headers) {
    const attrs = {};
    for (const [k, v] of Object.entries(headers)) {
      if (k.startsWith('ce-')) attrs[k.slice(3)] = unquote(v);
    }
    const missing = ['id', 'source', 'type'].filter((a) => !(a in attrs));
    if (missing.length) throw new BadRequest(`binary CloudEvent is missing ce-${missing.join(', ce-')}`);
    if (ctype) attrs.datacontenttype = ctype;
    cloudevent = attrs;
  }
  return [decode(body, ctype), makeContext(req.method, rawPath, query, headers, cloudevent)];
}

function isBytes(v) {
  return Buffer.isBuffer(v) || v instanceof Uint8Array;
}

/** -> [content type, Buffer] of a reply body. */
function bodyOf(data, contentType) {
  if (isBytes(data)) return [contentType || 'application/octet-stream', Buffer.from(data)];
  if (typeof data === 'string') return [contentType || 'text/plain; charset=utf-8', Buffer.from(data, 'utf8')];
  let text;
  try {
    text = JSON.stringify(data, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
  } catch (e) {
    throw new ReplyError(`reply is not JSON: ${e.message}`);
  }
  if (text === undefined) throw new ReplyError(`a ${typeof data} is not a reply body`);
  return [contentType || 'application/json', Buffer.from(text, 'utf8')];
}

// Printable ASCII but space, '"' and '%' as they are; the rest percent-encoded (UTF-8).
function ceHeaderValue(value) {
  if (typeof value === 'boolean') value = value ? 'true' : 'false';
  else if (typeof value === 'number' && Number.isInteger(value)) value = String(value);
  else if (typeof value !== 'string') {
    throw new ReplyError(`CloudEvent attribute value ${JSON.stringify(value)} is not a string, integer or boolean`);
  }
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte > 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x25
      ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A CloudEvent object -> [headers, content type, body] in binary mode. */
function cloudeventReply(event) {
  const ce = { ...event };
  if (ce.specversion !== '1.0') {
    throw new ReplyError(`CloudEvent reply: specversion must be "1.0", not ${JSON.stringify(ce.specversion)}`);
  }
  const missing = ['type', 'source'].filter((a) => !ce[a]);
  if (missing.length) throw new ReplyError(`CloudEvent reply needs ${missing.join(' and ')}`);
  if (ce.id === undefined || ce.id === null) ce.id = crypto.randomUUID();
  let ctype = ce.datacontenttype ?? null;
  delete ce.datacontenttype;
  let data = null;
  if ('data_base64' in ce) {
    if ('data' in ce) throw new ReplyError('CloudEvent reply has both data and data_base64');
    const text = String(ce.data_base64);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      throw new ReplyError('CloudEvent reply: data_base64 is not base64');
    }
    data = Buffer.from(text, 'base64');
    delete ce.data_base64;
  } else {
    data = ce.data ?? null;
    delete ce.data;
  }
  const headers = {};
  for (const [name, value] of Object.entries(ce)) {
    if (!CE_NAME.test(name)) {
      throw new ReplyError(`CloudEvent attribute name ${JSON.stringify(name)}: lower-case letters and digits, at most 20`);
    }
    if (value !== null && value !== undefined) headers[`ce-${name}`] = ceHeaderValue(value);
  }
  if (data === null) return [headers, ctype, Buffer.alloc(0)];
  [ctype, data] = bodyOf(data, ctype);
  return [headers, ctype, data];
}

function isCloudEvent(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !isBytes(v) && Object.hasOwn(v, 'specversion');
}

/** -> [status, headers, content type or null, body Buffer]. */
function encodeResult(result) {
  let status = 200;
  let extra = {};
  if (result !== null && typeof result === 'object' && result[REPLY]) {
    ({ status, headers: extra } = result);
    result = result.body;
    if (extra === null || extra === undefined) extra = {};
    if (typeof extra !== 'object' || Array.isArray(extra)) {
      throw new ReplyError(`reply headers must be an object, not ${Array.isArray(extra) ? 'an array' : typeof extra}`);
    }
  }
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new ReplyError(`reply status ${status} is not an HTTP status (100-599)`);
  }
  let headers = {};
  let ctype = null;
  let body = Buffer.alloc(0);
  if (isCloudEvent(result)) {
    [headers, ctype, body] = cloudeventReply(result);
  } else if (result === null || result === undefined) {
    if (status === 200) status = 204;
  } else {
    [ctype, body] = bodyOf(result, null);
  }
  for (const [k, v] of Object.entries(extra)) {
    if (typeof v !== 'string' || /[\r\n\0]/.test(k + v) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) {
      throw new ReplyError(`reply header ${JSON.stringify(k)}: names and values are strings without line breaks`);
    }
    if (k.toLowerCase() === 'content-type') ctype = v;
    else if (k.toLowerCase() !== 'content-length') headers[k.toLowerCase()] = v;
  }
  return [status, headers, ctype, body];
}

function send(res, status, ctype, body, headers = {}) {
  const out = { 'content-length': String(body.length), ...headers };
  if (ctype) out['content-type'] = ctype;
  res.writeHead(status, out);
  res.end(body);
}

const INTERNAL = Buffer.from('{"error":"internal error"}');

async function answer(handler, req, body) {
  let event;
  let context;
  try {
    [event, context] = parseRequest(req, body);
  } catch (e) {
    if (!(e instanceof BadRequest)) throw e;
    return [400, {}, 'application/json', Buffer.from(JSON.stringify({ error: e.message })), null];
  }
  const ce = context.cloudevent;
  try {
    const result = await handler(event, context);
    return [...encodeResult(result), ce];
  } catch (e) {
    if (e instanceof ReplyError) {
      log('ERROR', 'fnops.function', `handler reply on ${req.method} ${context.path} cannot be sent: ${e.message}`);
    } else {
      log('ERROR', 'fnops.function', `handler failed on ${req.method} ${context.path}\n${(e && e.stack) || e}`);
    }
    return [500, {}, 'application/json', INTERNAL, ce];
  }
}

function app(handler) {
  const accessLog = process.env.FNOPS_ACCESS_LOG === '1';
  return (req, res) => {
    const started = process.hrtime.bigint();
    const pathOnly = (req.url || '/').split('?')[0];
    if (req.method === 'GET' && (pathOnly === '/healthz' || pathOnly === '/readyz')) {
      req.resume();
      send(res, 200, 'text/plain', Buffer.from('ok')); // probes: answered, not logged
      return;
    }
    const chunks = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (chunk) => {
      if (tooBig) return;
      size += chunk.length;
      if (size > MAX_BODY) {
        tooBig = true;
        res.shouldKeepAlive = false;
        send(res, 413, 'application/json', Buffer.from('{"error":"body too large"}'), { connection: 'close' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', async () => {
      if (tooBig) return;
      let status, headers, ctype, body, ce;
      try {
        [status, headers, ctype, body, ce] = await answer(handler, req, Buffer.concat(chunks));
      } catch (e) {
        log('ERROR', 'fnops.function', `request ${req.method} ${pathOnly} failed\n${(e && e.stack) || e}`);
        [status, headers, ctype, body, ce] = [500, {}, 'application/json', INTERNAL, null];
      }
      try {
        send(res, status, ctype, body, headers);
      } catch (e) {
        // A content type the handler set that HTTP cannot carry: its bug, a 500.
        log('ERROR', 'fnops.function', `handler reply on ${req.method} ${pathOnly} cannot be sent: ${e.message}`);
        if (!res.headersSent) send(res, 500, 'application/json', INTERNAL);
      }
      if (accessLog) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const url = req.url || '/';
        const q = url.indexOf('?');
        const what = ce ? ` ce-type=${ce.type}` : '';
        log('INFO', 'fnops.access', `${req.method} ${unquote(pathOnly)}${q < 0 ? '' : url.slice(q)} ${status} ${ms.toFixed(1)}ms${what}`);
      }
    });
  };
}

/** What `fnops run` needs to say in one line why the handler did not load. */
function loadFailure(e) {
  const out = { type: (e && e.name) || 'Error', message: String((e && e.message) || e) };
  if (e instanceof LookupError) out.type = 'LookupError';
  const here = process.cwd() + path.sep;
  if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
    const m = /Cannot find (?:module|package) '([^']+)'/.exec(out.message);
    if (m && !m[1].startsWith('.') && !path.isAbsolute(m[1])) {
      out.type = 'ModuleNotFoundError';
      out.module = m[1];
    }
    out.message = out.message.split('\n')[0];
  }
  const stack = String((e && e.stack) || '');
  // A syntax error names its place on the stack's first line ("/app/handler.js:3");
  // anything else in the first frame inside the function folder.
  let m = /^(\/[^\n:]+):(\d+)\n/.exec(stack);
  if (m && m[1].startsWith(here)) {
    out.file = m[1];
    out.line = Number(m[2]);
  } else {
    for (const line of stack.split('\n')) {
      m = /\(?(?:file:\/\/)?(\/[^():\s]+):(\d+):(\d+)\)?\s*$/.exec(line);
      if (m && m[1].startsWith(here) && !m[1].includes(`${path.sep}node_modules${path.sep}`)) {
        out.file = m[1];
        out.line = Number(m[2]);
        out.col = Number(m[3]);
        break;
      }
    }
  }
  return out;
}

function sayReady(fd, what) {
  if (fd === null) return;
  try {
    fs.writeSync(fd, `${what ? JSON.stringify(what) : 'ready'}\n`);
    fs.closeSync(fd);
  } catch {
    // whoever asked has gone
  }
}

async function main() {
  // fnops run's handshake is not the handler's business: its environment is the image's.
  const ready = process.env.FNOPS_READY_FD;
  const listen = process.env.FNOPS_LISTEN_FD;
  delete process.env.FNOPS_READY_FD;
  delete process.env.FNOPS_LISTEN_FD;
  const readyFd = ready ? Number(ready) : null;
  let handler;
  try {
    handler = await loadHandler(process.env.FNOPS_HANDLER || 'handler:handle');
  } catch (e) {
    sayReady(readyFd, { error: loadFailure(e) });
    log('ERROR', 'fnops.function', `the handler did not load: ${(e && e.stack) || e}`);
    process.exit(1);
  }
  const server = http.createServer(app(handler));
  const graceful = Number(process.env.FNOPS_GRACEFUL_SECONDS || '25') * 1000;
  server.on('error', (e) => {
    log('ERROR', 'fnops.function', `cannot serve: ${e.message}`);
    sayReady(readyFd, { error: { type: 'OSError', message: e.message } });
    process.exit(3);
  });
  server.on('listening', () => sayReady(readyFd));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Stop accepting; requests in flight finish (within FNOPS_GRACEFUL_SECONDS), idle
    // keep-alive connections close now.
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), graceful).unref();
  };
  // A promise the handler left behind that fails later is its bug, logged as python's server
  // logs a failing task; Node would otherwise end the whole server for it.
  process.on('unhandledRejection', (e) => {
    log('ERROR', 'fnops.function', `a promise the handler did not wait for failed\n${(e && e.stack) || e}`);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (listen) server.listen({ fd: Number(listen) });
  else server.listen(Number(process.env.PORT || '8080'), process.env.HOST || '0.0.0.0');
}

if (require.main === module) main();

module.exports = { parseRequest, encodeResult, cloudeventReply, loadHandler };
