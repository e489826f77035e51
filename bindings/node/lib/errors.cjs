'use strict';
// Errors raised by the JavaScript layer, shaped like the addon's: an Error (or TypeError for an
// argument of the wrong type) with `code`, one of the library's ErrorCode names.

function typeError(message) {
  const e = new TypeError(message);
  e.code = 'invalid_argument';
  return e;
}

function leanembedError(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`;
}

module.exports = { typeError, leanembedError, describe };
