// V8's code cache for our modules and dependencies: a restart skips most compiling (issue #22:
// start-to-ready). Imported first by every entry point, before anything else loads. The cache is
// per user (NODE_COMPILE_CACHE, else $XDG_CACHE_HOME or ~/.cache), not Node's default under a
// shared /tmp, where another user could have left code for us to run. A directory that cannot be
// made (a read-only home) only means no cache; so does a Node without the feature (before 22.1).
import module from 'node:module'
import os from 'node:os'
import path from 'node:path'

const dir =
  process.env.NODE_COMPILE_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'edgesync', 'node-compile-cache')
if (typeof module.enableCompileCache === 'function') module.enableCompileCache(dir)
