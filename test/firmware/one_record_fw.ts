// A firmware whose service types all fit one record (test/host/one_record.test.ts): one AddTwoInts
// over Jacdac, as bench/firmware/min_jacdac.ts (the least firmware of bench:size). Its one_record_gen/
// (gitignored) is written by the test from services/example_interfaces/srv/AddTwoInts.srv alone.
import { createService } from "@robot-services/device"
import { AddTwoInts } from "./one_record_gen/interfaces"

createService(AddTwoInts, "add_two_ints", async (req) => ({ sum: req.a + req.b }))
