// skydm: every page works without this file. Later issues add Enter-to-send,
// live updates and optimistic sends here, as progressive enhancement only.
"use strict";
