// A Node.js caller of the agent service, built only from proto/: it asks the demo graph
// to file a ticket over the bidi Session, approves the interrupt in-band, and prints the
// final answer as JSON on stdout.
//
//   node tests/node/session_client.mjs 127.0.0.1:50051
import path from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const protoRoot = path.resolve(here, "../../proto");
const definition = protoLoader.loadSync("glassbox/agent/v1/agent_service.proto", {
  includeDirs: [protoRoot],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const { AgentService } = grpc.loadPackageDefinition(definition).glassbox.agent.v1;

const target = process.argv[2];
const client = new AgentService(target, grpc.credentials.createInsecure());
const session = client.Session();
const json = (value) => Buffer.from(JSON.stringify(value));
const parse = (bytes) => JSON.parse(Buffer.from(bytes).toString("utf8"));

let threadId = "";
let tokens = "";
const seen = [];

session.on("data", (response) => {
  if (response.kind === "accepted") {
    threadId = response.accepted.thread_id;
    return;
  }
  if (response.kind === "error") {
    console.error("error", response.error.code, response.error.message);
    process.exit(1);
  }
  if (response.kind !== "events") return;
  for (const event of response.events.events) {
    seen.push(`${response.request_id}:${event.payload}`);
    if (event.payload === "message_delta") tokens += event.message_delta.token;
    if (event.payload === "interrupt") {
      const proposal = parse(event.interrupt.value_json);
      session.write({
        request_id: "approve",
        run: {
          thread_id: threadId,
          resume: { answers_json: { [event.interrupt.interrupt_id]: json({ decision: "approve" }) } },
          command_id: "node-approve-1",
        },
      });
      seen.push(`asked:${proposal.action}`);
    }
    if (event.payload === "run_ended" && response.request_id === "approve") {
      console.log(JSON.stringify({
        status: event.run_ended.status,
        answer: tokens,
        thread_id: threadId,
        seq: event.seq,
        seen,
      }));
      session.end();
    }
  }
});
session.on("error", (err) => {
  console.error("stream failed:", err.code, err.details);
  process.exit(1);
});
session.on("end", () => client.close());

session.write({
  request_id: "start",
  run: {
    graph: "demo",
    input_json: json({ messages: [{ role: "user", content: "File a ticket: the login page is down" }] }),
    stream_modes: ["STREAM_MODE_MESSAGES", "STREAM_MODE_UPDATES"],
  },
});
