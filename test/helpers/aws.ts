/** The emulator and SDK clients for end-to-end tests (loopback only). */
import { ListSubscriptionsCommand } from "@aws-sdk/client-sns";
import { ListQueuesCommand } from "@aws-sdk/client-sqs";
import { type AwsClients, makeClients } from "../../core/aws/clients.ts";
import { type Emulator, startEmulator } from "../../local/emulator.ts";
import { TEST_KEYS } from "./run.ts";

export interface TestAws {
  readonly emulator: Emulator;
  readonly clients: AwsClients;
  queueNames(): Promise<string[]>;
  subscriptionCount(): Promise<number>;
  close(): Promise<void>;
}

export async function startTestAws(): Promise<TestAws> {
  const emulator = await startEmulator();
  const clients = makeClients({
    region: "us-east-1",
    endpoint: emulator.url,
    maxSockets: 16,
    credentials: TEST_KEYS,
  });
  return {
    emulator,
    clients,
    async queueNames() {
      const out = await clients.sqs.send(new ListQueuesCommand({}));
      return (out.QueueUrls ?? []).map((u) => u.split("/").pop() ?? "");
    },
    async subscriptionCount() {
      const out = await clients.sns.send(new ListSubscriptionsCommand({}));
      return out.Subscriptions?.length ?? 0;
    },
    async close() {
      clients.destroy();
      await emulator.stop();
    },
  };
}
