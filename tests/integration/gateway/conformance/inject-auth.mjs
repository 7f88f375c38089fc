// Adds the Authorization header to every request the conformance harness makes.
import http from "node:http";
const header = `Bearer ${process.env.CCTG_CONFORMANCE_KEY}`;
const originalFetch = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
  if (!headers.has("authorization")) headers.set("authorization", header);
  return originalFetch(input, { ...init, headers });
};
const originalRequest = http.request;
http.request = function (...args) {
  const request = originalRequest.apply(this, args);
  if (!request.getHeader("authorization")) request.setHeader("authorization", header);
  return request;
};
