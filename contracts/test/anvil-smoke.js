#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// Smoke test of the committed artifacts (contracts/out) on a real node: starts anvil with chain id 8453,
// deploys TestUSDC and OpenSeedChannels from their JSON, and runs a channel's life with ethers, whose
// EIP-712 implementation is independent of both the contracts and the forge tests: openWithAuthorization
// from a ReceiveWithAuthorization signed with signTypedData, a voucher claim (the contract's digest must
// equal ethers' TypedDataEncoder hash), a close without voucher, a permit-funded open, requestClose,
// a time jump and withdraw; every step checks exact balances and the events' decoded fields.
// Run by scripts/test-contracts.sh; exits non-zero on the first failure.
'use strict';

const path = require('path');
const net = require('net');
const { spawn } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const MODULES = path.join(ROOT, 'tools', 'node_modules');
const ethers = require(path.join(MODULES, 'ethers'));
const ANVIL = path.join(MODULES, '@foundry-rs', 'anvil-linux-amd64', 'bin', 'anvil');
const CHAIN_ID = 8453;
const GRACE = 900;
// anvil's default dev accounts (mnemonic "test test ... junk"), index 0..2.
const KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
];

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function eq(got, want, what) {
  if (got.toString() !== want.toString()) throw new Error(`${what}: got ${got}, want ${want}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForRpc(provider, child) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`anvil exited with ${child.exitCode}`);
    try {
      await provider.getBlockNumber();
      return;
    } catch (e) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('anvil did not come up');
}

function eventsOf(receipt, contract, name) {
  return receipt.logs
    .filter((l) => l.address.toLowerCase() === contract.target.toLowerCase())
    .map((l) => contract.interface.parseLog(l))
    .filter((e) => e && e.name === name);
}

async function deploy(name, signer, ...args) {
  const art = require(path.join(ROOT, 'contracts', 'out', `${name}.json`));
  const f = new ethers.ContractFactory(art.abi, art.bytecode, signer);
  const c = await f.deploy(...args);
  await c.waitForDeployment();
  return c;
}

async function run(provider) {
  const [deployer, buyer, seller] = KEYS.map((k) => new ethers.NonceManager(new ethers.Wallet(k, provider)));
  const buyerKey = new ethers.Wallet(KEYS[1]);
  const channelSigner = ethers.Wallet.createRandom();
  const usdc = await deploy('TestUSDC', deployer);
  const escrow = await deploy('OpenSeedChannels', deployer, await usdc.getAddress(), GRACE);
  const escrowAddr = await escrow.getAddress();
  const usdcAddr = await usdc.getAddress();
  const B = await buyer.getAddress();
  const S = await seller.getAddress();
  const bal = async (a) => usdc.balanceOf(a);

  await (await usdc.connect(deployer).mint(B, 1000_000000n)).wait();

  // 1. openWithAuthorization, relayed by the seller.
  const commitment = ethers.keccak256(ethers.toUtf8Bytes('commitment'));
  const salt = ethers.zeroPadValue('0x01', 32);
  const amount = 100_000000n;
  const latest = await provider.getBlock('latest');
  const validBefore = BigInt(latest.timestamp) + 3600n;
  const authNonce = await escrow.openAuthorizationNonce(B, S, channelSigner.address, commitment, salt);
  const usdcDomain = { name: 'USD Coin', version: '2', chainId: CHAIN_ID, verifyingContract: usdcAddr };
  const recvTypes = {
    ReceiveWithAuthorization: [
      { name: 'from', type: 'address' },
      { name: 'to', type: 'address' },
      { name: 'value', type: 'uint256' },
      { name: 'validAfter', type: 'uint256' },
      { name: 'validBefore', type: 'uint256' },
      { name: 'nonce', type: 'bytes32' },
    ],
  };
  const authSig = await buyerKey.signTypedData(usdcDomain, recvTypes, {
    from: B, to: escrowAddr, value: amount, validAfter: 0, validBefore, nonce: authNonce,
  });
  let rcpt = await (await escrow.connect(seller).openWithAuthorization(
    S, channelSigner.address, commitment, amount, salt, B, 0, validBefore, authSig)).wait();
  const opened = eventsOf(rcpt, escrow, 'ChannelOpened');
  eq(opened.length, 1, 'one ChannelOpened');
  const id = opened[0].args.channelId;
  eq(id, ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(
    ['uint256', 'address', 'address', 'address', 'bytes32'], [CHAIN_ID, escrowAddr, B, S, salt])), 'channelId');
  eq(opened[0].args.payer, B, 'event payer');
  eq(opened[0].args.seller, S, 'event seller');
  eq(opened[0].args.signer, channelSigner.address, 'event signer');
  eq(opened[0].args.deposit, amount, 'event deposit');
  eq(await bal(B), 900_000000n, 'buyer after open');
  eq(await bal(escrowAddr), amount, 'escrow after open');
  check(await usdc.authorizationState(B, authNonce), 'authorization consumed');

  // 2. Voucher signed with ethers; the contract's digest must match ethers' encoder.
  const escrowDomain = { name: 'OpenSeedChannels', version: '1', chainId: CHAIN_ID, verifyingContract: escrowAddr };
  const voucherTypes = {
    SpendingAuth: [
      { name: 'channelId', type: 'bytes32' },
      { name: 'cumulativeAmount', type: 'uint256' },
      { name: 'nonce', type: 'uint64' },
      { name: 'metadataHash', type: 'bytes32' },
    ],
  };
  const meta = ethers.keccak256(ethers.toUtf8Bytes('{"api":"openai.chat"}'));
  const voucher = { channelId: id, cumulativeAmount: 42_500000n, nonce: 7, metadataHash: meta };
  eq(await escrow.hashSpendingAuth(id, voucher.cumulativeAmount, voucher.nonce, meta),
    ethers.TypedDataEncoder.hash(escrowDomain, voucherTypes, voucher), 'SpendingAuth digest vs ethers');
  eq(await escrow.domainSeparator(), ethers.TypedDataEncoder.hashDomain(escrowDomain), 'domain separator vs ethers');
  const vsig = await channelSigner.signTypedData(escrowDomain, voucherTypes, voucher);
  rcpt = await (await escrow.connect(seller).claim(id, voucher.cumulativeAmount, voucher.nonce, meta, vsig)).wait();
  const claimed = eventsOf(rcpt, escrow, 'Claimed');
  eq(claimed.length, 1, 'one Claimed');
  eq(claimed[0].args.amount, 42_500000n, 'Claimed amount');
  eq(claimed[0].args.claimed, 42_500000n, 'Claimed total');
  eq(claimed[0].args.nonce, 7, 'Claimed nonce');
  eq(await bal(S), 42_500000n, 'seller after claim');
  eq(await escrow.lastNonce(id), 7, 'lastNonce');

  // 3. Close without a new voucher: the rest goes back to the buyer.
  rcpt = await (await escrow.connect(seller).close(id, 0, 0, ethers.ZeroHash, '0x')).wait();
  const closed = eventsOf(rcpt, escrow, 'Closed');
  eq(closed[0].args.claimed, 42_500000n, 'Closed claimed');
  eq(closed[0].args.refund, 57_500000n, 'Closed refund');
  eq(await bal(B), 957_500000n, 'buyer after close');
  eq(await bal(escrowAddr), 0n, 'escrow after close');
  const ch = await escrow.getChannel(id);
  check(ch.closed, 'getChannel closed');

  // 4. permit, then open from the allowance; requestClose, wait out the grace, withdraw.
  const deadline = validBefore;
  const permitTypes = {
    Permit: [
      { name: 'owner', type: 'address' },
      { name: 'spender', type: 'address' },
      { name: 'value', type: 'uint256' },
      { name: 'nonce', type: 'uint256' },
      { name: 'deadline', type: 'uint256' },
    ],
  };
  const psig = ethers.Signature.from(await buyerKey.signTypedData(usdcDomain, permitTypes, {
    owner: B, spender: escrowAddr, value: 50_000000n, nonce: await usdc.nonces(B), deadline,
  }));
  await (await usdc.connect(seller).permit(B, escrowAddr, 50_000000n, deadline, psig.v, psig.r, psig.s)).wait();
  eq(await usdc.allowance(B, escrowAddr), 50_000000n, 'permit allowance');
  const salt2 = ethers.zeroPadValue('0x02', 32);
  rcpt = await (await escrow.connect(buyer).open(S, channelSigner.address, commitment, 50_000000n, salt2)).wait();
  const id2 = eventsOf(rcpt, escrow, 'ChannelOpened')[0].args.channelId;
  rcpt = await (await escrow.connect(buyer).requestClose(id2)).wait();
  const closeAt = eventsOf(rcpt, escrow, 'CloseRequested')[0].args.closeAt;
  const t = (await provider.getBlock(rcpt.blockNumber)).timestamp;
  eq(closeAt, BigInt(t) + BigInt(GRACE), 'closeAt');
  let refused = false;
  try {
    await escrow.connect(buyer).withdraw.staticCall(id2);
  } catch (e) {
    refused = escrow.interface.parseError(e.data)?.name === 'GracePeriodNotOver';
  }
  check(refused, 'withdraw before the grace refused with GracePeriodNotOver');
  await provider.send('evm_increaseTime', [GRACE]);
  await provider.send('evm_mine', []);
  rcpt = await (await escrow.connect(buyer).withdraw(id2)).wait();
  const w = eventsOf(rcpt, escrow, 'Withdrawn')[0];
  eq(w.args.refund, 50_000000n, 'Withdrawn refund');
  eq(await bal(B), 957_500000n, 'buyer after withdraw');
  eq(await bal(escrowAddr), 0n, 'escrow empty');
}

async function main() {
  const port = await freePort();
  const child = spawn(ANVIL, ['--port', String(port), '--chain-id', String(CHAIN_ID), '--silent'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const provider = new ethers.JsonRpcProvider(`http://127.0.0.1:${port}`, CHAIN_ID, {
    staticNetwork: true, pollingInterval: 50,
  });
  try {
    await waitForRpc(provider, child);
    await run(provider);
    console.log('anvil-smoke: ok (artifacts deployed on anvil, channel lifecycle checked with ethers)');
  } finally {
    provider.destroy();
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
}

main().catch((e) => {
  console.error(`anvil-smoke: FAILED: ${e.stack || e}`);
  process.exit(1);
});
