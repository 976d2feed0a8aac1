import { Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { Messaging } from "./messaging.ts";

/** The load stack: the run's channels (the worker fleet joins it in a later step). */
export class LoaderStack extends Stack {
  public readonly messaging: Messaging;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.messaging = new Messaging(this, "Messaging");
  }
}
