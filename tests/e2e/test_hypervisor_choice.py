"""`strato up --hypervisor auto` never simulates silently: with QEMU on the host a
missing built-in image is built at the first start (progress on the terminal), or,
where it cannot be, shown `failed` with the fix, and launches of it are refused
naming that fix. The simulator, when it runs, says so loudly."""

import os
import shutil
import tempfile

import pytest

from conftest import DEFAULT_IMAGE, Strato
from helpers import expect_code
from netns import Internet, remove_owned_namespaces


def auto_strato(images, tag):
    # QEMU's unprivileged users walk into the image store.
    os.chmod(images, 0o755)
    inet = Internet(tag).create()
    s = Strato(hypervisor="auto", extra_args=["--images-dir", images, "--uplink-netns", inet.ns])
    os.chmod(s.data_dir, 0o711)
    return s, inet


def stop(s, inet):
    try:
        s.stop()
        remove_owned_namespaces(s.data_dir)
        s.cleanup()
    finally:
        inet.remove()


def test_a_missing_image_that_cannot_be_built_is_failed_with_the_fix(monkeypatch):
    images = tempfile.mkdtemp(prefix="strato-no-images-")
    monkeypatch.setenv("STRATO_BUILD_IMAGE", "0")
    s, inet = auto_strato(images, "noimg")
    try:
        s.start()
        log = s.read_log()
        assert "INSTANCES ARE SIMULATED" not in log
        assert "cannot build the built-in image (STRATO_BUILD_IMAGE=0)" in log, log[-3000:]
        ec2 = s.client()
        (img,) = ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"]
        assert img["State"] == "failed"
        assert "scripts/build-image.sh" in img["StateReason"]["Message"]
        _, msg = expect_code("InvalidAMIID.Unavailable", ec2.run_instances, ImageId=DEFAULT_IMAGE,
                             InstanceType="t3.nano", MinCount=1, MaxCount=1)
        assert "scripts/build-image.sh" in msg and images in msg, msg
        assert ec2.describe_instances()["Reservations"] == []
    finally:
        stop(s, inet)
        shutil.rmtree(images, ignore_errors=True)


def test_a_missing_image_is_built_at_the_first_start():
    images = tempfile.mkdtemp(prefix="strato-build-images-")
    s, inet = auto_strato(images, "build")
    try:
        s.start(timeout=600)
        log = s.read_log()
        assert "the built-in image is missing; building it" in log, log[-3000:]
        assert os.path.exists(os.path.join(images, "strato-minimal", "vmlinuz"))
        ec2 = s.client()
        (img,) = ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"]
        assert img["State"] == "available"
    finally:
        stop(s, inet)
        shutil.rmtree(images, ignore_errors=True)


def test_the_simulator_says_so():
    s = Strato(hypervisor="sim").start()
    try:
        assert "INSTANCES ARE SIMULATED" in s.read_log()
    finally:
        s.stop()
        s.cleanup()
