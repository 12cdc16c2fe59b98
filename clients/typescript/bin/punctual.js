#!/usr/bin/env node
// A committed shim, so that npm links the `punctual` bin at install time, before the first build.
require('../dist/src/cli.js').main();
