import * as ec2 from "aws-cdk-lib/aws-ec2";
import { Construct } from "constructs";
import { acknowledge } from "./nag.ts";

export interface WorkerNetworkProps {
  /**
   * An existing VPC to run the workers in. It is looked up when the app is synthesized, which needs AWS
   * credentials and a stack with an explicit account and region.
   * @default a new VPC with two public subnets, no NAT gateway and an S3 gateway endpoint
   */
  readonly vpcId?: string | undefined;
}

/**
 * Where the workers run: the VPC, the subnets the master launches into, and the workers' security group,
 * which has no inbound rule (workers only call out: SQS, SNS, S3, the NFS source).
 */
export class WorkerNetwork extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly subnets: ec2.SelectedSubnets;
  public readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: WorkerNetworkProps = {}) {
    super(scope, id);
    if (props.vpcId) {
      this.vpc = ec2.Vpc.fromLookup(this, "Vpc", { vpcId: props.vpcId });
      // Private subnets with a NAT when the VPC has them, else its public ones (every default VPC has only
      // those). Asked of the VPC first: selectSubnets throws for a subnet type the VPC has none of.
      if (this.vpc.privateSubnets.length === 0 && this.vpc.publicSubnets.length === 0) {
        throw new Error(
          `vpcId ${props.vpcId}: the VPC has no private subnets with egress and no public subnets; the workers must reach SQS, SNS and S3: give a VPC with either`,
        );
      }
      this.subnets = this.vpc.selectSubnets({
        subnetType:
          this.vpc.privateSubnets.length > 0 ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PUBLIC,
      });
    } else {
      // Public subnets that give instances a public address: no NAT gateway to pay for. The S3 gateway
      // endpoint is free and keeps the bulk of the traffic (S3) off the internet gateway.
      const vpc = new ec2.Vpc(this, "Vpc", {
        ipAddresses: ec2.IpAddresses.cidr("10.42.0.0/16"),
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [{ name: "Public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 20 }],
      });
      vpc.addGatewayEndpoint("S3", { service: ec2.GatewayVpcEndpointAwsService.S3 });
      acknowledge(
        vpc,
        "VPC7",
        "a VPC for the load's workers only, which accept no inbound traffic and call AWS APIs and the NFS source; flow logs would record only that",
      );
      this.vpc = vpc;
      this.subnets = vpc.selectSubnets({ subnetType: ec2.SubnetType.PUBLIC });
    }
    this.securityGroup = new ec2.SecurityGroup(this, "WorkerSecurityGroup", {
      vpc: this.vpc,
      description: "s3-bucket-loader workers: no inbound, all outbound",
      allowAllOutbound: true,
    });
  }
}
