// Preloaded (node --require) by the tests of a service without some package: every package named in
// TXOUTBOX_TEST_HIDDEN_PACKAGES (comma-separated) fails to resolve as if it were not installed.
const Module = require('node:module');

const hidden = new Set((process.env.TXOUTBOX_TEST_HIDDEN_PACKAGES ?? '').split(',').filter(Boolean));
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const name = request.startsWith('@') ? request.split('/').slice(0, 2).join('/') : request.split('/')[0];
  if (hidden.has(name)) {
    const err = new Error(`Cannot find module '${request}'`);
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolve.call(this, request, ...rest);
};
