// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * EIP-712 encoders written independently of the contracts under test (from the EIP-712, EIP-2612 and
 * EIP-3009 texts), so that a test signing with these and the contract verifying agree only if both
 * follow the standards. Signatures come out as 65-byte r||s||v, the wire form of PROTOCOL.md §8.
 */

import {Test} from "./Test.sol";

abstract contract Sig is Test {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant SPENDING_AUTH_TH =
        keccak256("SpendingAuth(bytes32 channelId,uint256 cumulativeAmount,uint64 nonce,bytes32 metadataHash)");
    bytes32 internal constant RECEIVE_AUTH_TH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant TRANSFER_AUTH_TH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant PERMIT_TH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    /// secp256k1 group order.
    uint256 internal constant SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    function domain(string memory name, string memory version, uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256(bytes(version)), chainId, verifyingContract)
        );
    }

    function escrowDomain(address escrow) internal view returns (bytes32) {
        return domain("OpenSeedChannels", "1", block.chainid, escrow);
    }

    function usdcDomain(address usdc) internal view returns (bytes32) {
        return domain("USD Coin", "2", block.chainid, usdc);
    }

    function typedDigest(bytes32 domainSep, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domainSep, structHash));
    }

    function voucherDigest(bytes32 domainSep, bytes32 channelId, uint256 cum, uint64 nonce, bytes32 meta)
        internal
        pure
        returns (bytes32)
    {
        return typedDigest(domainSep, keccak256(abi.encode(SPENDING_AUTH_TH, channelId, cum, nonce, meta)));
    }

    function signDigest(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function signVoucher(uint256 key, address escrow, bytes32 channelId, uint256 cum, uint64 nonce, bytes32 meta)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(key, voucherDigest(escrowDomain(escrow), channelId, cum, nonce, meta));
    }

    /// The other valid-looking signature of the same digest: s -> n - s, v flipped (EIP-2 malleability).
    function malleate(bytes memory sig) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
        return abi.encodePacked(r, bytes32(SECP_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function split(bytes memory sig) internal pure returns (uint8 v, bytes32 r, bytes32 s) {
        assembly ("memory-safe") {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
    }

    function authDigest(
        bytes32 typehash,
        address usdc,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes32) {
        return typedDigest(
            usdcDomain(usdc), keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce))
        );
    }
}
