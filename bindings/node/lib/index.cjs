'use strict';
module.exports = require('./embedder.cjs');
