import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { importProperties, PROPERTY_RULES, parseProperties } from "../../cli/properties-import.ts";
import { runExtraSettings } from "../../cli/run-extras.ts";
import { parseConfig } from "../../core/config.ts";
import { checkFileNames, parseConfigFile } from "../../core/config-file.ts";
import { masterCliSettings, masterSettings } from "../../master/settings.ts";
import { workerSettings } from "../../worker/settings.ts";

// A configuration of the original tool, written here from its property table: a master that launches its
// workers on EC2 and crawls a directory, workers that rsync into a yas3fs mount.
const SAMPLE = String.raw`
# shared
aws.sns.control.topic.name=loader-control
aws.sqs.queue.name=loader-toc
aws.access.key=AKIAEXAMPLEKEY
aws.secret.key=do-not-copy-me
aws.account.principal.id=123456789012
aws.user.arn=arn:aws:iam::123456789012:user/loader

# master
master.workers.total=12
master.tocqueue.dispatch.threads=8
master.failfast.on.worker.current.summary.error=true
master.auto.shutdown.after.n.minutes=30
master.s3.log.bucket=loader-logs
master.s3.log.worker.files=/var/log/loader.log,/var/log/yas3fs.log
master.s3.log.master.files=/opt/loader/loader.log
master.workers.error.report.logfile=/opt/loader/errors.json
master.workers.ec2.managed=true
master.workers.ec2.minutes.to.wait.for.worker.init=15
master.workers.ec2.ami.id=ami-0abc
master.workers.ec2.instanceType=t2.medium
master.workers.ec2.disk.deviceName=/dev/xvda
master.workers.ec2.disk.volumeType=Gp2
master.workers.ec2.disk.size.gigabytes=40
master.workers.ec2.keyName=loader-key
master.workers.ec2.securityGroupId=sg-0abc
master.workers.ec2.subnetId=subnet-0abc
master.workers.ec2.shutdownBehavior=Terminate
master.workers.ec2.userDataFile=/opt/loader/ec2-init.py

# TOC: the original lets a key repeat; the last one wins
tocGenerator.class=org.bitsofinfo.s3.toc.S3BucketObjectLister
tocGenerator.class=org.bitsofinfo.s3.toc.DirectoryCrawler
tocGenerator.source.dir=/mnt/nfs/data
tocGenerator.lastModifiedAtGreaterThanFilter=2024-03-01

# worker
worker.toc.consumer.threads.num=24
worker.toc.consumer.threads.min.requests.before.idle=20
worker.initialize.cmd=/usr/bin/yas3fs s3://target-bucket /mnt/s3 --log /var/log/yas3fs.log
worker.initialize.cmd.env=PATH=/usr/bin
worker.pre.validate.cmd=/bin/fusermount -u /mnt/s3;%worker.initialize.cmd%
worker.write.backoff.monitor.class=org.bitsofinfo.s3.yas3fs.Yas3fsS3UploadMonitor
worker.write.backoff.monitor.yas3fs.checkEveryMS=5000
tocPayloadHandler.write.class=org.bitsofinfo.s3.toc.FileCopyTOCPayloadHandler
tocPayloadHandler.source.dir.root=/mnt/nfs/data
tocPayloadHandler.target.dir.root=/mnt/s3
tocPayloadHandler.write.retries=3
tocPayloadHandler.write.retries.sleep.ms=5000
tocPayloadHandler.write.use.rsync=true
tocPayloadHandler.write.rsync.options=--inplace -avz
tocPayloadHandler.write.rsync.tolerable.error.regex=.*No such file or directory.*
tocPayloadHandler.write.chown=1000:1000
tocPayloadHandler.validate.class=org.bitsofinfo.s3.toc.ValidatingTOCPayloadHandler
tocPayloadHandler.validate.mode=validateLocallyThenS3OnFailure
tocPayloadHandler.validate.s3.bucketName=target-bucket
a.property.the.original.never.had = \
    continued
`;

describe("importing the original tool's properties", () => {
  it("parses Java properties: comments, separators, continuation lines, the last of a repeated key", () => {
    const p = parseProperties("# c\n! c\na=1\nb: 2\nc 3\nd = x\\\n   y\ne=\\u0041\\tB\na=4\n");
    assert.deepEqual(Object.fromEntries(p), { a: "4", b: "2", c: "3", d: "xy", e: "A\tB" });
  });

  it("carries every property that has an equivalent over to our settings", () => {
    const r = importProperties(SAMPLE);
    assert.deepEqual(r.settings, {
      workers: 12,
      failfast: true,
      report: "/opt/loader/errors.json",
      launch: true,
      initTimeoutSec: 900,
      subnetIds: "subnet-0abc",
      source: "/mnt/nfs/data",
      modifiedAfter: "2024-03-01",
      concurrency: 24,
      target: "/mnt/s3",
      copier: "rsync",
      validate: "attrs",
    });
    assert.deepEqual(parse(r.yaml), r.settings);
  });

  it("writes a comment line for every property without an equivalent, with why, and never a secret", () => {
    const r = importProperties(SAMPLE);
    const dropped = new Map(r.dropped.map((d) => [d.property, d.why]));
    for (const key of [
      "aws.sns.control.topic.name",
      "aws.sqs.queue.name",
      "aws.access.key",
      "aws.secret.key",
      "master.tocqueue.dispatch.threads",
      "master.workers.ec2.instanceType",
      "worker.initialize.cmd",
      "worker.write.backoff.monitor.class",
      "tocPayloadHandler.write.rsync.tolerable.error.regex",
      "tocPayloadHandler.validate.s3.bucketName",
      "a.property.the.original.never.had",
    ]) {
      assert.ok(dropped.has(key), `${key} is listed as not carried over`);
      assert.match(r.yaml, new RegExp(`^# ${key.replace(/\./g, "\\.")}: \\S`, "m"));
    }
    assert.match(
      dropped.get("a.property.the.original.never.had") ?? "",
      /not a property of the original tool/,
    );
    assert.match(dropped.get("master.workers.ec2.instanceType") ?? "", /cdk deploy -c instanceType/);
    assert.doesNotMatch(r.yaml, /do-not-copy-me|AKIAEXAMPLEKEY/);
    // Every property in the file is accounted for, once.
    const props = parseProperties(SAMPLE);
    assert.equal(r.carried.length + r.dropped.length, props.size);
  });

  it("has a rule for every property of the original", () => {
    // The reference lists 77 properties (sections 1.1 to 1.9); each has its rule.
    assert.equal(Object.keys(PROPERTY_RULES).length, 77);
  });

  it("writes a file our programs accept as --config", () => {
    const file = parseConfigFile(importProperties(SAMPLE).yaml, "imported.yaml");
    checkFileNames(file, [workerSettings, masterCliSettings, runExtraSettings]);
    const channels = {
      "topic-arn": "arn:aws:sns:us-east-1:000000000000:t",
      "toc-queue-url": "http://127.0.0.1:1/000000000000/toc",
      "report-queue-url": "http://127.0.0.1:1/000000000000/rep",
    };
    const m = parseConfig(masterSettings, channels, {}, file);
    assert.equal(m.workers, 12);
    assert.equal(m.source, "/mnt/nfs/data");
    const x = parseConfig(runExtraSettings, {}, {}, file);
    assert.equal(x.modifiedAfter, Date.parse("2024-03-01T00:00:00Z"));
    const w = parseConfig(workerSettings, channels, {}, file);
    assert.equal(w.concurrency, 24);
    assert.equal(w.copier, "rsync");
  });

  it("makes a bucket lister a bucket mirror", () => {
    const r = importProperties(
      "tocGenerator.class=org.bitsofinfo.s3.toc.S3BucketObjectLister\ntocGenerator.source.s3.bucketName=old-bucket\n" +
        "tocPayloadHandler.write.class=org.bitsofinfo.s3.toc.S3KeyCopyingTOCPayloadHandler\n" +
        "tocPayloadHandler.write.s3keyCopy.targetS3BucketName=new-bucket\n",
    );
    assert.deepEqual(r.settings, { source: "s3://old-bucket", target: "s3://new-bucket" });
  });
});
