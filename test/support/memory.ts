// What the test's process holds after a full garbage collection, for tests that bound what an
// attack leaves behind in a bridge or broker running in the test's own process: `heapUsed` (the
// JavaScript heap) and `arrayBuffers` (the buffers outside it, where sockets keep their data).
import * as v8 from "node:v8"
import * as vm from "node:vm"

let gc: (() => void) | undefined

export function afterGc(): NodeJS.MemoryUsage {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc")
    gc = vm.runInNewContext("gc") as () => void
  }
  gc()
  return process.memoryUsage()
}
