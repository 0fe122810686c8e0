// The names the device library uses most, as statements that compile to no code. DeviceScript
// numbers strings (property names included) in the order it meets them while compiling the program,
// and a string numbered past 247 costs one or two more bytes at every use. The compiler meets these
// when it compiles this module, which the library's modules import before anything else, so they take
// the low numbers; left to themselves they would be met inside the library's functions, which the
// program's own statements reach last, after the robot's strings (-672 bytes in the robot firmware,
// docs/benchmarks.md "Firmware code size"). Most used first (counted in the robot firmware): the
// call runtime's fields and the fields of
// DeviceScript's own timers and events that every image carries. A name no longer used costs nothing
// but a number.
"buf"; "s"; "out"; "state"; "sendOff"; "ctx"; "res"; "tail"; "got"; "bool"; "msg"; "req"; "entry"
"period"; "t"; "used"; "err"; "when"; "ann"; "n"; "wake"; "announce"; "emit"; "emitter"; "lens"
"segs"; "seq"; "total"; "budget"; "q"; "resultDue"; "transient"; "base"; "cancelled"; "cost"
"fiber"; "handlers"; "pos"; "qBytes"; "running"; "/"; "bytes"; "listVersion"; "statusDue"; "called"
"deadline"; "gen"; "gone"; "killAt"; "maxSessions"; "queue"; "reason"; "rr"; "status"; "topic"
"_changeHandlers"; "_report"; "ackAt"; "annTimer"; "cancel"; "hash"; "maxInFlight"
"maxRequestBytes"; "maxResponseBytes"; "policy"; "released"; "resultSent"; "send"; "sequence"; "win"
"_reportHandlers"; "dropped"; "elements"; "errAt"; "len"; "links"; "nackAt"; "online"; "pre"
"retentionMs"; "shared"
