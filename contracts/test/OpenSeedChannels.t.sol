// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * Unit tests for OpenSeedChannels: each function's success path with exact balances and events, and each
 * revert (roles, stale and replayed vouchers, wrong signer, high-s, cross-chain and cross-contract
 * replay, grace period, fee-on-transfer tokens, EIP-3009 opening and its replay and front-running).
 * Vouchers are signed with an EIP-712 encoder written in test/utils/Sig.sol, not with the contract's.
 */

import {Sig} from "./utils/Sig.sol";
import {OpenSeedChannels} from "../src/OpenSeedChannels.sol";
import {TestUSDC} from "../src/TestUSDC.sol";
import {FeeOnTransferToken} from "./mocks/FeeOnTransferToken.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

contract OpenSeedChannelsTest is Sig {
    uint64 internal constant GRACE = 15 minutes;
    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant PAYER_KEY = 0xA11CE;
    uint256 internal constant SIGNER_KEY = 0x5161E4;
    uint256 internal constant WRONG_KEY = 0xBAD;
    bytes32 internal constant COMMIT = keccak256("pedersen commitment C");
    bytes32 internal constant SALT = bytes32(uint256(1));
    bytes32 internal constant META = keccak256("request body");

    TestUSDC internal usdc;
    OpenSeedChannels internal escrow;
    address internal payer;
    address internal signer;
    address internal seller = address(0x5E11E4);
    address internal stranger = address(0x57A4);

    function setUp() public {
        vm.warp(T0);
        usdc = new TestUSDC();
        escrow = new OpenSeedChannels(address(usdc), GRACE);
        payer = vm.addr(PAYER_KEY);
        signer = vm.addr(SIGNER_KEY);
        vm.label(payer, "payer");
        vm.label(signer, "signer");
        vm.label(seller, "seller");
        vm.label(stranger, "stranger");
        usdc.mint(payer, 1_000e6);
        vm.prank(payer);
        usdc.approve(address(escrow), type(uint256).max);
    }

    // ---- helpers ------------------------------------------------------------------------------

    function _open(uint128 amount) internal returns (bytes32 id) {
        vm.prank(payer);
        id = escrow.open(seller, signer, COMMIT, amount, SALT);
    }

    function _voucher(bytes32 id, uint256 cum, uint64 nonce) internal view returns (bytes memory) {
        return signVoucher(SIGNER_KEY, address(escrow), id, cum, nonce, META);
    }

    function _claim(bytes32 id, uint256 cum, uint64 nonce) internal returns (uint128) {
        bytes memory sig = _voucher(id, cum, nonce);
        vm.prank(seller);
        return escrow.claim(id, cum, nonce, META, sig);
    }

    function _assertBalances(uint256 payerBal, uint256 sellerBal, uint256 escrowBal) internal view {
        vm.assertEq(usdc.balanceOf(payer), payerBal, "payer balance");
        vm.assertEq(usdc.balanceOf(seller), sellerBal, "seller balance");
        vm.assertEq(usdc.balanceOf(address(escrow)), escrowBal, "escrow balance");
    }

    function _assertChannel(bytes32 id, uint128 deposit, uint128 claimed, uint64 closeAt, bool closed) internal view {
        (address p, address s, address g, bytes32 c, uint128 d, uint128 cl, uint64 ca, bool cd) = escrow.getChannel(id);
        vm.assertEq(p, payer, "channel payer");
        vm.assertEq(s, seller, "channel seller");
        vm.assertEq(g, signer, "channel signer");
        vm.assertEq(c, COMMIT, "channel commitment");
        vm.assertEq(d, deposit, "channel deposit");
        vm.assertEq(cl, claimed, "channel claimed");
        vm.assertEq(ca, closeAt, "channel closeAt");
        vm.assertEq(cd, closed, "channel closed");
    }

    // ---- construction and domain --------------------------------------------------------------

    function test_constructor_state() public view {
        vm.assertEq(address(escrow.token()), address(usdc), "token");
        vm.assertEq(escrow.closeGrace(), GRACE, "grace");
        vm.assertEq(
            escrow.SPENDING_AUTH_TYPEHASH(),
            keccak256("SpendingAuth(bytes32 channelId,uint256 cumulativeAmount,uint64 nonce,bytes32 metadataHash)"),
            "typehash"
        );
        vm.assertEq(escrow.domainSeparator(), escrowDomain(address(escrow)), "domain separator");
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address vc, bytes32 salt,) =
            escrow.eip712Domain();
        vm.assertEq(uint256(uint8(fields)), 0x0f, "EIP-5267 fields: name, version, chainId, verifyingContract");
        vm.assertEq(name, "OpenSeedChannels", "name");
        vm.assertEq(version, "1", "version");
        vm.assertEq(chainId, block.chainid, "chainId");
        vm.assertEq(vc, address(escrow), "verifyingContract");
        vm.assertEq(salt, bytes32(0), "salt");
    }

    function test_constructor_rejects_bad_arguments() public {
        vm.expectRevert(OpenSeedChannels.ZeroAddress.selector);
        new OpenSeedChannels(address(0), GRACE);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.InvalidCloseGrace.selector, uint64(0)));
        new OpenSeedChannels(address(usdc), 0);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.InvalidCloseGrace.selector, uint64(30 days + 1)));
        new OpenSeedChannels(address(usdc), 30 days + 1);
    }

    function test_hashSpendingAuth_matches_independent_encoder() public view {
        bytes32 id = keccak256("some channel");
        vm.assertEq(
            escrow.hashSpendingAuth(id, 12345, 7, META),
            voucherDigest(escrowDomain(address(escrow)), id, 12345, 7, META),
            "digest"
        );
    }

    // ---- open ---------------------------------------------------------------------------------

    function test_open_success() public {
        bytes32 want = keccak256(abi.encode(block.chainid, address(escrow), payer, seller, SALT));
        vm.assertEq(escrow.computeChannelId(payer, seller, SALT), want, "computeChannelId");
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.ChannelOpened(want, payer, seller, signer, COMMIT, 100e6);
        bytes32 id = _open(100e6);
        vm.assertEq(id, want, "channelId");
        _assertChannel(id, 100e6, 0, 0, false);
        _assertBalances(900e6, 0, 100e6);
        vm.assertEq(escrow.lastNonce(id), 0, "lastNonce");
    }

    function test_open_rejects_zero_seller_signer_amount() public {
        vm.startPrank(payer);
        vm.expectRevert(OpenSeedChannels.ZeroAddress.selector);
        escrow.open(address(0), signer, COMMIT, 1, SALT);
        vm.expectRevert(OpenSeedChannels.ZeroAddress.selector);
        escrow.open(seller, address(0), COMMIT, 1, SALT);
        vm.expectRevert(OpenSeedChannels.ZeroAmount.selector);
        escrow.open(seller, signer, COMMIT, 0, SALT);
        vm.stopPrank();
        _assertBalances(1_000e6, 0, 0);
    }

    function test_open_rejects_existing_channel_even_after_close() public {
        bytes32 id = _open(10e6);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelExists.selector, id));
        escrow.open(seller, signer, COMMIT, 10e6, SALT);
        vm.prank(seller);
        escrow.close(id, 0, 0, bytes32(0), "");
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelExists.selector, id));
        escrow.open(seller, signer, COMMIT, 10e6, SALT);
        // Another salt is another channel.
        vm.prank(payer);
        escrow.open(seller, signer, COMMIT, 10e6, bytes32(uint256(2)));
    }

    function test_open_without_allowance_reverts() public {
        vm.prank(payer);
        usdc.approve(address(escrow), 5e6);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 5e6, 6e6)
        );
        escrow.open(seller, signer, COMMIT, 6e6, SALT);
    }

    // ---- topUp --------------------------------------------------------------------------------

    function test_topUp_success() public {
        bytes32 id = _open(100e6);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.ToppedUp(id, 25e6, 125e6);
        vm.prank(payer);
        escrow.topUp(id, 25e6);
        _assertChannel(id, 125e6, 0, 0, false);
        _assertBalances(875e6, 0, 125e6);
    }

    function test_topUp_rejects() public {
        bytes32 id = _open(100e6);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, stranger));
        escrow.topUp(id, 1);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, seller));
        escrow.topUp(id, 1);
        vm.prank(payer);
        vm.expectRevert(OpenSeedChannels.ZeroAmount.selector);
        escrow.topUp(id, 0);
        bytes32 unknown = keccak256("nope");
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelNotFound.selector, unknown));
        escrow.topUp(unknown, 1);

        vm.prank(payer);
        escrow.requestClose(id);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.CloseAlreadyRequested.selector, uint64(T0 + GRACE)));
        escrow.topUp(id, 1);

        vm.warp(T0 + GRACE);
        vm.prank(payer);
        escrow.withdraw(id);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelIsClosed.selector, id));
        escrow.topUp(id, 1);
        _assertBalances(1_000e6, 0, 0);
    }

    // ---- claim --------------------------------------------------------------------------------

    function test_claim_success_repeatable() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 30e6, 1);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.Claimed(id, 30e6, 1, META, 30e6, 30e6);
        vm.prank(seller);
        vm.assertEq(escrow.claim(id, 30e6, 1, META, sig), 30e6, "first claim pays 30");
        _assertBalances(900e6, 30e6, 70e6);
        vm.assertEq(_claim(id, 45e6, 5), 15e6, "second claim pays the difference");
        _assertBalances(900e6, 45e6, 55e6);
        _assertChannel(id, 100e6, 45e6, 0, false);
        vm.assertEq(escrow.lastNonce(id), 5, "lastNonce");
    }

    function test_claim_first_voucher_may_have_nonce_zero() public {
        bytes32 id = _open(100e6);
        vm.assertEq(_claim(id, 1e6, 0), 1e6, "nonce 0 pays");
        vm.assertEq(_claim(id, 2e6, 0), 1e6, "equal nonce with more pays");
    }

    function test_claim_above_deposit_pays_only_deposit_then_rest_after_topUp() public {
        bytes32 id = _open(100e6);
        vm.assertEq(_claim(id, 150e6, 3), 100e6, "capped at deposit");
        _assertBalances(900e6, 100e6, 0);
        _assertChannel(id, 100e6, 100e6, 0, false);
        // Nothing more to take from the same voucher ...
        bytes memory sig = _voucher(id, 150e6, 3);
        vm.prank(seller);
        vm.expectRevert(OpenSeedChannels.NothingToClaim.selector);
        escrow.claim(id, 150e6, 3, META, sig);
        // ... until the payer tops up: then the same voucher (same nonce) pays the rest it signed for.
        vm.prank(payer);
        escrow.topUp(id, 80e6);
        vm.assertEq(_claim(id, 150e6, 3), 50e6, "rest of the voucher after top-up");
        _assertBalances(820e6, 150e6, 30e6);
        _assertChannel(id, 180e6, 150e6, 0, false);
    }

    function test_claim_replayed_voucher_pays_nothing() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 40e6, 2);
        vm.prank(seller);
        escrow.claim(id, 40e6, 2, META, sig);
        vm.prank(seller);
        vm.expectRevert(OpenSeedChannels.NothingToClaim.selector);
        escrow.claim(id, 40e6, 2, META, sig);
        _assertBalances(900e6, 40e6, 60e6);
    }

    function test_claim_lower_nonce_refused() public {
        bytes32 id = _open(100e6);
        _claim(id, 40e6, 9);
        // Higher amount but an older nonce: refused.
        bytes memory sig = _voucher(id, 60e6, 8);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.StaleNonce.selector, uint64(8), uint64(9)));
        escrow.claim(id, 60e6, 8, META, sig);
        // Newer nonce with a lower cumulative amount: nothing to pay.
        sig = _voucher(id, 30e6, 10);
        vm.prank(seller);
        vm.expectRevert(OpenSeedChannels.NothingToClaim.selector);
        escrow.claim(id, 30e6, 10, META, sig);
        _assertBalances(900e6, 40e6, 60e6);
        vm.assertEq(escrow.lastNonce(id), 9, "reverted claims leave lastNonce");
    }

    function test_claim_wrong_signer_refused() public {
        bytes32 id = _open(100e6);
        bytes memory sig = signVoucher(WRONG_KEY, address(escrow), id, 10e6, 1, META);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.WrongSigner.selector, vm.addr(WRONG_KEY)));
        escrow.claim(id, 10e6, 1, META, sig);
        // The payer's wallet key is not the channel signer either.
        sig = signVoucher(PAYER_KEY, address(escrow), id, 10e6, 1, META);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.WrongSigner.selector, payer));
        escrow.claim(id, 10e6, 1, META, sig);
        _assertBalances(900e6, 0, 100e6);
    }

    function test_claim_tampered_fields_refused() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 10e6, 1);
        vm.startPrank(seller);
        // Each changed field changes the digest, so the signature recovers some other address.
        vm.expectPartialRevert(OpenSeedChannels.WrongSigner.selector);
        escrow.claim(id, 11e6, 1, META, sig);
        vm.expectPartialRevert(OpenSeedChannels.WrongSigner.selector);
        escrow.claim(id, 10e6, 2, META, sig);
        vm.expectPartialRevert(OpenSeedChannels.WrongSigner.selector);
        escrow.claim(id, 10e6, 1, keccak256("other body"), sig);
        bytes32 otherId = keccak256("other channel");
        vm.expectPartialRevert(OpenSeedChannels.WrongSigner.selector);
        escrow.claim(id, 10e6, 1, META, signVoucher(SIGNER_KEY, address(escrow), otherId, 10e6, 1, META));
        vm.stopPrank();
        _assertBalances(900e6, 0, 100e6);
    }

    function test_claim_by_stranger_or_payer_refused() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 10e6, 1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotSeller.selector, stranger));
        escrow.claim(id, 10e6, 1, META, sig);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotSeller.selector, payer));
        escrow.claim(id, 10e6, 1, META, sig);
        bytes32 unknown = keccak256("nope");
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelNotFound.selector, unknown));
        escrow.claim(unknown, 10e6, 1, META, sig);
        _assertBalances(900e6, 0, 100e6);
    }

    function test_claim_high_s_refused() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 10e6, 1);
        bytes memory high = malleate(sig);
        // The malleated form is a valid ECDSA signature for the same key (ecrecover accepts it) ...
        (uint8 v, bytes32 r, bytes32 s) = split(high);
        vm.assertGt(uint256(s), SECP_N / 2, "s is high");
        vm.assertEq(ecrecover(escrow.hashSpendingAuth(id, 10e6, 1, META), v, r, s), signer, "ecrecover accepts");
        // ... which the escrow refuses.
        vm.prank(seller);
        vm.expectRevert(OpenSeedChannels.InvalidSignature.selector);
        escrow.claim(id, 10e6, 1, META, high);
        vm.assertEq(_claim(id, 10e6, 1), 10e6, "low-s form pays");
    }

    function test_claim_malformed_signatures_refused() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 10e6, 1);
        (uint8 v, bytes32 r, bytes32 s) = split(sig);
        bytes[4] memory bad = [
            abi.encodePacked(r, s), // 64 bytes (EIP-2098 compact form is not accepted)
            abi.encodePacked(r, s, v, uint8(0)), // 66 bytes
            abi.encodePacked(r, s, v - 27), // v 0/1
            bytes("")
        ];
        for (uint256 i = 0; i < bad.length; i++) {
            vm.prank(seller);
            vm.expectRevert(OpenSeedChannels.InvalidSignature.selector);
            escrow.claim(id, 10e6, 1, META, bad[i]);
        }
    }

    function test_cross_chain_replay_refused() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 10e6, 1); // signed for this chain id
        uint256 home = block.chainid;
        vm.chainId(home == 8453 ? 84532 : 8453);
        vm.assertTrue(
            escrow.domainSeparator() != domain("OpenSeedChannels", "1", home, address(escrow)), "domain moved"
        );
        vm.prank(seller);
        vm.expectPartialRevert(OpenSeedChannels.WrongSigner.selector); // another digest, another address
        escrow.claim(id, 10e6, 1, META, sig);
        // A voucher made for this chain's domain verifies, so the refusal above came from the chain id.
        vm.assertEq(_claim(id, 10e6, 1), 10e6, "voucher for the current chain pays");
        vm.chainId(home);
    }

    function test_cross_contract_replay_refused() public {
        OpenSeedChannels other = new OpenSeedChannels(address(usdc), GRACE);
        vm.prank(payer);
        usdc.approve(address(other), type(uint256).max);
        bytes32 id = _open(100e6);
        vm.prank(payer);
        bytes32 id2 = other.open(seller, signer, COMMIT, 100e6, SALT);
        vm.assertTrue(id != id2, "channel ids differ per contract");

        // The first escrow's voucher, verbatim, on the second escrow: no such channel there.
        bytes memory sig = _voucher(id, 10e6, 1);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelNotFound.selector, id));
        other.claim(id, 10e6, 1, META, sig);

        // A voucher naming the second escrow's channel but signed in the first escrow's domain.
        sig = signVoucher(SIGNER_KEY, address(escrow), id2, 10e6, 1, META);
        vm.prank(seller);
        vm.expectPartialRevert(OpenSeedChannels.WrongSigner.selector);
        other.claim(id2, 10e6, 1, META, sig);
        vm.assertEq(usdc.balanceOf(seller), 0, "seller got nothing");
    }

    // ---- close (seller) -----------------------------------------------------------------------

    function test_close_with_voucher() public {
        bytes32 id = _open(100e6);
        _claim(id, 20e6, 1);
        bytes memory sig = _voucher(id, 35e6, 2);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.Claimed(id, 35e6, 2, META, 15e6, 35e6);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.Closed(id, 35e6, 65e6);
        vm.prank(seller);
        escrow.close(id, 35e6, 2, META, sig);
        _assertBalances(965e6, 35e6, 0);
        _assertChannel(id, 100e6, 35e6, 0, true);

        sig = _voucher(id, 50e6, 3);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelIsClosed.selector, id));
        escrow.claim(id, 50e6, 3, META, sig);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelIsClosed.selector, id));
        escrow.requestClose(id);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelIsClosed.selector, id));
        escrow.withdraw(id);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelIsClosed.selector, id));
        escrow.close(id, 0, 0, bytes32(0), "");
    }

    function test_close_voucher_above_deposit() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 500e6, 1);
        vm.prank(seller);
        escrow.close(id, 500e6, 1, META, sig);
        _assertBalances(900e6, 100e6, 0);
        _assertChannel(id, 100e6, 100e6, 0, true);
    }

    function test_close_without_new_voucher() public {
        bytes32 id = _open(100e6);
        _claim(id, 20e6, 1);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.Closed(id, 20e6, 80e6);
        vm.prank(seller);
        escrow.close(id, 0, 0, bytes32(0), "");
        _assertBalances(980e6, 20e6, 0);
        _assertChannel(id, 100e6, 20e6, 0, true);
    }

    function test_close_with_already_claimed_voucher() public {
        bytes32 id = _open(100e6);
        _claim(id, 20e6, 1);
        bytes memory sig = _voucher(id, 20e6, 1);
        vm.prank(seller);
        escrow.close(id, 20e6, 1, META, sig);
        _assertBalances(980e6, 20e6, 0);
    }

    function test_close_empty_signature_with_fields_refused() public {
        bytes32 id = _open(100e6);
        vm.startPrank(seller);
        vm.expectRevert(OpenSeedChannels.InvalidSignature.selector);
        escrow.close(id, 10e6, 0, bytes32(0), "");
        vm.expectRevert(OpenSeedChannels.InvalidSignature.selector);
        escrow.close(id, 0, 1, bytes32(0), "");
        vm.expectRevert(OpenSeedChannels.InvalidSignature.selector);
        escrow.close(id, 0, 0, META, "");
        vm.stopPrank();
    }

    function test_close_by_stranger_or_payer_refused() public {
        bytes32 id = _open(100e6);
        bytes memory sig = _voucher(id, 10e6, 1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotSeller.selector, stranger));
        escrow.close(id, 10e6, 1, META, sig);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotSeller.selector, payer));
        escrow.close(id, 0, 0, bytes32(0), "");
        _assertBalances(900e6, 0, 100e6);
    }

    function test_close_with_bad_voucher_refused() public {
        bytes32 id = _open(100e6);
        _claim(id, 20e6, 4);
        bytes memory sig = _voucher(id, 30e6, 3);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.StaleNonce.selector, uint64(3), uint64(4)));
        escrow.close(id, 30e6, 3, META, sig);
        sig = signVoucher(WRONG_KEY, address(escrow), id, 30e6, 5, META);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.WrongSigner.selector, vm.addr(WRONG_KEY)));
        escrow.close(id, 30e6, 5, META, sig);
        _assertChannel(id, 100e6, 20e6, 0, false);
    }

    // ---- requestClose / withdraw (payer) ------------------------------------------------------

    function test_requestClose_success() public {
        bytes32 id = _open(100e6);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.CloseRequested(id, uint64(T0 + GRACE));
        vm.prank(payer);
        escrow.requestClose(id);
        _assertChannel(id, 100e6, 0, uint64(T0 + GRACE), false);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.CloseAlreadyRequested.selector, uint64(T0 + GRACE)));
        escrow.requestClose(id);
    }

    function test_requestClose_by_non_payer_refused() public {
        bytes32 id = _open(100e6);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, seller));
        escrow.requestClose(id);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, stranger));
        escrow.requestClose(id);
        _assertChannel(id, 100e6, 0, 0, false);
    }

    function test_withdraw_after_grace_with_claims_during_grace() public {
        bytes32 id = _open(100e6);
        _claim(id, 10e6, 1);
        vm.prank(payer);
        escrow.requestClose(id);

        vm.warp(T0 + GRACE - 1);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.GracePeriodNotOver.selector, uint64(T0 + GRACE)));
        escrow.withdraw(id);
        // The seller still redeems during the grace period.
        vm.assertEq(_claim(id, 25e6, 2), 15e6, "claim during grace");

        vm.warp(T0 + GRACE);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.Withdrawn(id, 25e6, 75e6);
        vm.prank(payer);
        escrow.withdraw(id);
        _assertBalances(975e6, 25e6, 0);
        _assertChannel(id, 100e6, 25e6, uint64(T0 + GRACE), true);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelIsClosed.selector, id));
        escrow.withdraw(id);
    }

    function test_seller_cannot_act_after_grace() public {
        bytes32 id = _open(100e6);
        vm.prank(payer);
        escrow.requestClose(id);
        vm.warp(T0 + GRACE);
        bytes memory sig = _voucher(id, 10e6, 1);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.GracePeriodOver.selector, uint64(T0 + GRACE)));
        escrow.claim(id, 10e6, 1, META, sig);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.GracePeriodOver.selector, uint64(T0 + GRACE)));
        escrow.close(id, 10e6, 1, META, sig);
        vm.prank(payer);
        escrow.withdraw(id);
        _assertBalances(1_000e6, 0, 0);
    }

    function test_seller_close_during_grace() public {
        bytes32 id = _open(100e6);
        vm.prank(payer);
        escrow.requestClose(id);
        vm.warp(T0 + GRACE - 1);
        bytes memory sig = _voucher(id, 10e6, 1);
        vm.prank(seller);
        escrow.close(id, 10e6, 1, META, sig);
        _assertBalances(990e6, 10e6, 0);
    }

    function test_withdraw_refused_without_request_or_by_others() public {
        bytes32 id = _open(100e6);
        vm.prank(payer);
        vm.expectRevert(OpenSeedChannels.CloseNotRequested.selector);
        escrow.withdraw(id);
        vm.prank(payer);
        escrow.requestClose(id);
        vm.warp(T0 + GRACE);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, stranger));
        escrow.withdraw(id);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.NotPayer.selector, seller));
        escrow.withdraw(id);
        _assertBalances(900e6, 0, 100e6);
    }

    function test_withdraw_everything_claimed() public {
        bytes32 id = _open(100e6);
        _claim(id, 100e6, 1);
        vm.prank(payer);
        escrow.requestClose(id);
        vm.warp(T0 + GRACE);
        vm.prank(payer);
        escrow.withdraw(id);
        _assertBalances(900e6, 100e6, 0);
        _assertChannel(id, 100e6, 100e6, uint64(T0 + GRACE), true);
    }

    // ---- openWithAuthorization (EIP-3009) -----------------------------------------------------

    function _authSig(
        address seller_,
        address signer_,
        bytes32 commitment,
        uint128 amount,
        bytes32 salt,
        uint256 before_
    ) internal view returns (bytes memory) {
        bytes32 nonce = escrow.openAuthorizationNonce(payer, seller_, signer_, commitment, salt);
        return signDigest(
            PAYER_KEY, authDigest(RECEIVE_AUTH_TH, address(usdc), payer, address(escrow), amount, 0, before_, nonce)
        );
    }

    function test_openWithAuthorization_success_by_relayer() public {
        vm.prank(payer);
        usdc.approve(address(escrow), 0); // no allowance needed
        uint256 validBefore = T0 + 1 hours;
        bytes memory sig = _authSig(seller, signer, COMMIT, 100e6, SALT, validBefore);
        bytes32 want = escrow.computeChannelId(payer, seller, SALT);
        bytes32 authNonce = keccak256(abi.encode(want, signer, COMMIT));
        vm.assertEq(escrow.openAuthorizationNonce(payer, seller, signer, COMMIT, SALT), authNonce, "auth nonce");

        vm.expectEmit(true, true, true, true, address(escrow));
        emit OpenSeedChannels.ChannelOpened(want, payer, seller, signer, COMMIT, 100e6);
        vm.prank(stranger); // anyone may submit it: the nonce binds the channel's parameters
        bytes32 id = escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, sig);
        vm.assertEq(id, want, "channelId uses from as payer");
        _assertChannel(id, 100e6, 0, 0, false);
        _assertBalances(900e6, 0, 100e6);
        vm.assertTrue(usdc.authorizationState(payer, authNonce), "authorization used");
        vm.assertEq(_claim(id, 5e6, 1), 5e6, "channel works");
    }

    function test_openWithAuthorization_replay_refused() public {
        uint256 validBefore = T0 + 1 hours;
        bytes memory sig = _authSig(seller, signer, COMMIT, 100e6, SALT, validBefore);
        bytes32 id = escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, sig);
        // Same call again: the channel exists.
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.ChannelExists.selector, id));
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, sig);
        // And the token refuses the authorization itself a second time.
        (uint8 v, bytes32 r, bytes32 s) = split(sig);
        bytes32 authNonce = escrow.openAuthorizationNonce(payer, seller, signer, COMMIT, SALT);
        vm.prank(address(escrow));
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationUsedOrCanceled.selector, payer, authNonce));
        usdc.receiveWithAuthorization(payer, address(escrow), 100e6, 0, validBefore, authNonce, v, r, s);
        _assertBalances(900e6, 0, 100e6);
    }

    function test_openWithAuthorization_redirect_refused() public {
        uint256 validBefore = T0 + 1 hours;
        bytes memory sig = _authSig(seller, signer, COMMIT, 100e6, SALT, validBefore);
        address evil = address(0xE71);
        // A front-runner reusing the authorization for its own seller, signer, commitment or salt
        // changes the required nonce, so the token's signature check fails.
        vm.startPrank(evil);
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        escrow.openWithAuthorization(evil, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, sig);
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        escrow.openWithAuthorization(seller, evil, COMMIT, 100e6, SALT, payer, 0, validBefore, sig);
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        escrow.openWithAuthorization(seller, signer, bytes32(0), 100e6, SALT, payer, 0, validBefore, sig);
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, bytes32(uint256(7)), payer, 0, validBefore, sig);
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        escrow.openWithAuthorization(seller, signer, COMMIT, 99e6, SALT, payer, 0, validBefore, sig);
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector); // and a different payer
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, evil, 0, validBefore, sig);
        vm.stopPrank();
        _assertBalances(1_000e6, 0, 0);
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, sig);
        _assertBalances(900e6, 0, 100e6);
    }

    function test_openWithAuthorization_bad_inputs_refused() public {
        uint256 validBefore = T0 + 1 hours;
        bytes memory sig = _authSig(seller, signer, COMMIT, 100e6, SALT, validBefore);
        vm.expectRevert(OpenSeedChannels.InvalidSignature.selector);
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, bytes("short"));
        vm.expectRevert(OpenSeedChannels.ZeroAddress.selector);
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, address(0), 0, validBefore, sig);
        vm.warp(validBefore);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationExpired.selector, validBefore));
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, sig);
        vm.warp(T0);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.InvalidSigner.selector, address(0), payer)); // high s
        escrow.openWithAuthorization(seller, signer, COMMIT, 100e6, SALT, payer, 0, validBefore, malleate(sig));
    }

    // ---- fee-on-transfer tokens -------------------------------------------------------------

    function test_fee_on_transfer_token_refused_in_open_and_topUp() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        OpenSeedChannels e = new OpenSeedChannels(address(fot), GRACE);
        fot.mint(payer, 1_000e6);
        vm.startPrank(payer);
        fot.approve(address(e), type(uint256).max);
        bytes32 id = e.open(seller, signer, COMMIT, 100e6, SALT); // fee off: fine
        fot.setFeeBps(100); // 1 %
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.TransferAmountMismatch.selector, 10e6, 9.9e6));
        e.topUp(id, 10e6);
        vm.expectRevert(abi.encodeWithSelector(OpenSeedChannels.TransferAmountMismatch.selector, 10e6, 9.9e6));
        e.open(seller, signer, COMMIT, 10e6, bytes32(uint256(2)));
        vm.stopPrank();
        vm.assertEq(fot.balanceOf(address(e)), 100e6, "escrow holds only the fee-free deposit");
        (,,,, uint128 deposit,,,) = e.getChannel(id);
        vm.assertEq(deposit, 100e6, "deposit unchanged");
    }

    // ---- fuzz ---------------------------------------------------------------------------------

    /// Any sequence of two vouchers pays exactly min(max cumulative, deposit) in total, never more.
    function testFuzz_claims_pay_min_of_cumulative_and_deposit(uint128 deposit, uint256 cum1, uint256 cum2) public {
        deposit = uint128(bound(deposit, 1, 1_000e6));
        cum1 = bound(cum1, 1, 2_000e6);
        cum2 = bound(cum2, 0, 2_000e6);
        bytes32 id = _open(deposit);
        uint256 cap1 = cum1 < deposit ? cum1 : deposit;
        vm.assertEq(_claim(id, cum1, 1), cap1, "first claim");
        uint256 cap2 = cum2 < deposit ? cum2 : deposit;
        bytes memory sig = _voucher(id, cum2, 2);
        vm.prank(seller);
        if (cap2 <= cap1) {
            vm.expectRevert(OpenSeedChannels.NothingToClaim.selector);
            escrow.claim(id, cum2, 2, META, sig);
        } else {
            vm.assertEq(escrow.claim(id, cum2, 2, META, sig), cap2 - cap1, "second claim");
        }
        uint256 paid = cap1 > cap2 ? cap1 : cap2;
        vm.prank(seller);
        escrow.close(id, 0, 0, bytes32(0), "");
        _assertBalances(1_000e6 - paid, paid, 0);
    }
}
