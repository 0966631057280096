'use strict';
// The `require` entry of kernelflow. kernelflow is an ES module ("type": "module"); Node 20.19+
// and 22.12+ load it through require() directly (the "module-sync" export condition), so this
// file is only reached where that is not possible: it says what to do instead.
const err = new Error(
  "kernelflow is an ES module and cannot be loaded with require() in this version of Node.\n" +
    "  - In an ES module (a .mjs file, or a package.json with \"type\": \"module\"): import { genred, source } from 'kernelflow';\n" +
    "  - From CommonJS: const kf = await import('kernelflow');  (inside an async function)\n" +
    '  - Or upgrade to Node 20.19+ / 22.12+, where require() of an ES module works.',
);
err.code = 'ERR_REQUIRE_ESM';
throw err;
