// Start the console: wire each view, then route.

import * as auth from "./auth.js";
import * as generate from "./generate.js";
import * as jobs from "./jobs.js";
import * as library from "./library.js";
import * as player from "./player.js";
import { register, start } from "./router.js";
import * as upload from "./upload.js";

auth.init();
library.init();
upload.init();
generate.init();
player.init();
jobs.init();
register("missing", { title: "Not found", public: true });
start();
