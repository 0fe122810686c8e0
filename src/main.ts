import * as ds from "@devicescript/core"
import { Server, startServer } from "@devicescript/server"

class Echo extends Server {
    constructor() { super(ds.RosServices.spec) }
    async frame(data: Buffer) {
        await this._send(ds.RosServices.spec.lookup("frameOut").encode(data))
    }
}
startServer(new Echo())
console.log("echo up")
