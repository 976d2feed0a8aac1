import * as ec2 from "aws-cdk-lib/aws-ec2";
import type * as iam from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";

export interface HardenedLaunchTemplateProps {
  readonly instanceType: ec2.InstanceType;
  readonly instanceProfile: iam.IInstanceProfile;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly userData: ec2.UserData;
  /** Size of the encrypted gp3 root volume. */
  readonly rootVolumeGiB: number;
}

/**
 * The launch template every instance of the stack uses (workers and the master host): the latest Amazon Linux
 * 2023 for the instance type's architecture, IMDSv2 only (one hop, tags readable), an encrypted gp3 root
 * volume deleted with the instance, and a power-off that terminates.
 */
export function hardenedLaunchTemplate(
  scope: Construct,
  id: string,
  props: HardenedLaunchTemplateProps,
): ec2.LaunchTemplate {
  return new ec2.LaunchTemplate(scope, id, {
    instanceType: props.instanceType,
    machineImage: amazonLinux2023(props.instanceType),
    instanceProfile: props.instanceProfile,
    securityGroup: props.securityGroup,
    userData: props.userData,
    requireImdsv2: true,
    httpPutResponseHopLimit: 1,
    instanceMetadataTags: true,
    instanceInitiatedShutdownBehavior: ec2.InstanceInitiatedShutdownBehavior.TERMINATE,
    blockDevices: [
      {
        deviceName: "/dev/xvda",
        volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB, {
          volumeType: ec2.EbsDeviceVolumeType.GP3,
          encrypted: true,
          deleteOnTermination: true,
        }),
      },
    ],
  });
}

/**
 * The image of the stack's launch templates: the latest Amazon Linux 2023 for the instance type's architecture,
 * from its public SSM parameter (resolved at deploy time; every use in a stack shares one template parameter,
 * so `getImage(scope).imageId` is the very image the launch template names).
 */
export function amazonLinux2023(instanceType: ec2.InstanceType): ec2.IMachineImage {
  return ec2.MachineImage.latestAmazonLinux2023({
    cpuType:
      instanceType.architecture === ec2.InstanceArchitecture.ARM_64
        ? ec2.AmazonLinuxCpuType.ARM_64
        : ec2.AmazonLinuxCpuType.X86_64,
  });
}
